import { describe, expect, it } from 'vitest';
import { attempt, open, rejected } from '../helpers/client.ts';
import { signToken } from '../helpers/tokens.ts';
import { exchange, upgradeHead } from './helpers/raw.ts';
import { useRig } from './helpers/setup.ts';

const rig = useRig();

describe('origin lookalikes against an allow-list', () => {
  it('admits the exact origin and answers 403 to every lookalike, relaying nothing', async () => {
    const { gw, upstream } = await rig.start({
      origins: { allowed: ['https://example.com', 'http://localhost:3000'], allowMissing: false },
      limits: { attempts: { max: 1000 } },
    });
    const path = `/ws/a?access_token=${await signToken()}`;
    const ok = await open(`${gw.base}${path}`, [], { origin: 'https://example.com' });
    ok.close();
    const before = upstream.handshakes.length;
    const lookalikes = [
      'https://evil.example.com.attacker',
      'https://example.com.evil',
      'https://evil-example.com',
      'https://sub.example.com',
      'http://example.com',
      'https://example.com:8443',
      'https://example.com:443',
      'http://localhost:3001',
      'http://localhost',
      'https://localhost:3000',
      'null',
      'https://EXAMPLE.com',
      'HTTPS://example.com',
      'https://example.com.',
      'https://example.com/',
      'https://user@example.com',
      'https://example.com@evil.example',
      'https://example.com%2f.evil',
      'https://example.com, https://evil.example',
      'file://',
    ];
    for (const origin of lookalikes) {
      const r = await exchange(gw.port, upgradeHead(path, [['Origin', origin]]));
      expect(r.status, origin).toBe(403);
      expect(r.data.toString(), origin).toContain('"error":"origin"');
    }
    const missing = await exchange(gw.port, upgradeHead(path));
    expect(missing.status).toBe(403);
    expect(upstream.handshakes.length - before).toBe(0);
  });
});

describe('X-Forwarded-For from an untrusted peer', () => {
  it('is ignored for limits: the 6th connection from one peer gets 429 conn_limit whatever XFF it claims', async () => {
    const { gw, upstream } = await rig.start({ limits: { concurrent: { max: 5 }, attempts: { max: 100 } } });
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    const sockets = [];
    for (let i = 0; i < 5; i++) sockets.push(await open(url, [], { headers: { 'X-Forwarded-For': `203.0.113.${i + 1}` } }));
    for (const xff of ['198.51.100.7', '127.0.0.2', '203.0.113.9, 10.0.0.1', '::1']) {
      const r = rejected(await attempt(url, [], { headers: { 'X-Forwarded-For': xff } }));
      expect(r.status, xff).toBe(429);
      expect(JSON.parse(r.body).error, xff).toBe('conn_limit');
    }
    expect(upstream.handshakes).toHaveLength(5);
    // The upstream is told the real peer, not the spoofed value.
    for (const h of upstream.handshakes) expect(h.headers['x-forwarded-for']).toBe('127.0.0.1');
    for (const ws of sockets) ws.close();
  });
});

describe('X-Forwarded-For from a trusted proxy', () => {
  it('joins repeated X-Forwarded-For lines in order (RFC 9110 §5.3) instead of keeping the last', async () => {
    const { gw, upstream } = await rig.start({ server: { trustedProxies: ['127.0.0.1', '10.0.0.0/8'] } });
    // Proxy chain: client 198.51.100.7 → 10.0.0.1 (trusted) → 127.0.0.1 (trusted, the peer), each
    // appending its own line. Keeping only the last line made 10.0.0.1 look like the client.
    const r = await exchange(
      gw.port,
      upgradeHead(`/ws/a?access_token=${await signToken()}`, [
        ['X-Forwarded-For', '198.51.100.7'],
        ['X-Forwarded-For', '10.0.0.1'],
      ]),
      { until: (d) => d.includes('\r\n\r\n') },
    );
    expect(r.status).toBe(101);
    expect(upstream.handshakes.at(-1)!.headers['x-forwarded-for']).toBe('198.51.100.7');
  });
});
