import { describe, expect, it } from 'vitest';
import { open } from '../helpers/client.ts';
import { signToken } from '../helpers/tokens.ts';
import { exchange, upgradeHead } from './helpers/raw.ts';
import { useRig } from './helpers/setup.ts';

const rig = useRig();
const limits = { attempts: { max: 1000 }, concurrent: { max: 100 } };

describe('handshake abuse (raw HTTP)', () => {
  it('rejects a wrong method, a missing/short/invalid key and a version ≠ 13 with the documented status, and relays nothing', async () => {
    const { gw, upstream } = await rig.start({ limits });
    const path = `/ws/a?access_token=${await signToken()}`;
    const cases: Array<[string, string, number]> = [
      ['POST', upgradeHead(path, [], { method: 'POST' }), 400],
      ['PUT', upgradeHead(path, [], { method: 'PUT' }), 400],
      ['missing key', upgradeHead(path, [], { omit: ['Sec-WebSocket-Key'] }), 400],
      ['short key', upgradeHead(path, [['Sec-WebSocket-Key', 'c2hvcnQ=']], { omit: ['Sec-WebSocket-Key'] }), 400],
      ['not base64', upgradeHead(path, [['Sec-WebSocket-Key', '!!!!!!!!!!!!!!!!!!!!!!==']], { omit: ['Sec-WebSocket-Key'] }), 400],
      ['17-byte key', upgradeHead(path, [['Sec-WebSocket-Key', 'AAAAAAAAAAAAAAAAAAAAAAA=']], { omit: ['Sec-WebSocket-Key'] }), 400],
      ['no Upgrade', upgradeHead(path, [], { omit: ['Upgrade'] }), 400],
      ['no Connection', upgradeHead(path, [], { omit: ['Connection'] }), 400],
      ['version 8', upgradeHead(path, [['Sec-WebSocket-Version', '8']], { omit: ['Sec-WebSocket-Version'] }), 426],
      ['version missing', upgradeHead(path, [], { omit: ['Sec-WebSocket-Version'] }), 426],
      ['version 13, 8', upgradeHead(path, [['Sec-WebSocket-Version', '13, 8']], { omit: ['Sec-WebSocket-Version'] }), 426],
    ];
    for (const [name, request, status] of cases) {
      const r = await exchange(gw.port, request);
      expect(r.status, name).toBe(status);
      expect(r.closedByServer, name).toBe(true);
      if (status === 426) expect(r.head, name).toMatch(/\r\nSec-WebSocket-Version: 13(\r\n|$)/i);
      else expect(r.data.toString(), name).toContain('"error":"bad_request"');
    }
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('oversized heads: a 64 KB header is parsed (and a bad token behind it still gets 401); ~200 KB or 60+ headers are dropped by uWS without an answer', async () => {
    const { gw, upstream } = await rig.start({ limits });
    // Measured against uWS 20.30: a 64 000-byte header value is accepted, a 200 000-byte one makes uWS
    // close TCP at once with no response; 60 extra headers exceed its header-count limit and it answers
    // nothing, closing after its ~10–12 s HTTP timeout (pinned in the slowloris case).
    const big = await exchange(
      gw.port,
      upgradeHead('/ws/a', [
        ['X-Big', 'a'.repeat(64_000)],
        ['Authorization', 'Bearer garbage'],
      ]),
    );
    expect(big.status).toBe(401);
    const huge = await exchange(gw.port, upgradeHead(`/ws/a?access_token=${await signToken()}`, [['X-Big', 'a'.repeat(200_000)]]), {
      timeoutMs: 5000,
    });
    expect(huge.status).toBeNull();
    expect(huge.closedByServer).toBe(true);
    const many = await exchange(
      gw.port,
      upgradeHead(
        `/ws/a?access_token=${await signToken()}`,
        Array.from({ length: 60 }, (_, i) => [`X-H${i}`, 'v'] as [string, string]),
      ),
      { timeoutMs: 1000 },
    );
    expect(many.status).toBeNull();
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('two Sec-WebSocket-Key headers: 400, whichever is valid', async () => {
    const { gw } = await rig.start({ limits });
    const r = await exchange(
      gw.port,
      upgradeHead(`/ws/a?access_token=${await signToken()}`, [['Sec-WebSocket-Key', 'AAAAAAAAAAAAAAAAAAAAAA==']]),
      { until: (d) => d.includes('\r\n\r\n') },
    );
    expect(r.status).toBe(400);
    const bad = await exchange(gw.port, upgradeHead(`/ws/a?access_token=${await signToken()}`, [['Sec-WebSocket-Key', 'short']]));
    expect(bad.status).toBe(400);
  });

  it('two Origin headers, the disallowed one second: 400', async () => {
    const { gw, upstream } = await rig.start({ limits, origins: { allowed: ['https://example.com'] } });
    const r = await exchange(
      gw.port,
      upgradeHead(`/ws/a?access_token=${await signToken()}`, [
        ['Origin', 'https://example.com'],
        ['Origin', 'https://evil.example'],
      ]),
    );
    expect(r.status).toBe(400);
    expect(upstream.handshakes).toHaveLength(0);
  });

  // Found by this suite: the gateway kept the last copy, so a disallowed Origin followed by an allowed
  // one was admitted (a parser differential with any intermediary that checks the first copy).
  it('two Origin headers, the disallowed one first: 400', async () => {
    const { gw, upstream } = await rig.start({ limits, origins: { allowed: ['https://example.com'] } });
    const r = await exchange(
      gw.port,
      upgradeHead(`/ws/a?access_token=${await signToken()}`, [
        ['Origin', 'https://evil.example'],
        ['Origin', 'https://example.com'],
      ]),
      { until: (d) => d.includes('\r\n\r\n') },
    );
    expect(r.status).toBe(400);
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('two Authorization headers with a bad token second: 400', async () => {
    const { gw, upstream } = await rig.start({ limits });
    const r = await exchange(
      gw.port,
      upgradeHead('/ws/a', [
        ['Authorization', `Bearer ${await signToken()}`],
        ['Authorization', 'Bearer garbage'],
      ]),
    );
    expect(r.status).toBe(400);
    expect(upstream.handshakes).toHaveLength(0);
  });

  // Found by this suite (same cause): the last Authorization won, so a bad and a good token together
  // were admitted; which token was judged depended on header order.
  it('two Authorization headers, the bad token first: 400', async () => {
    const { gw, upstream } = await rig.start({ limits });
    const r = await exchange(
      gw.port,
      upgradeHead('/ws/a', [
        ['Authorization', 'Bearer garbage'],
        ['Authorization', `Bearer ${await signToken()}`],
      ]),
      { until: (d) => d.includes('\r\n\r\n') },
    );
    expect(r.status).toBe(400);
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('slowloris: a head trickled byte by byte is closed within a bounded wait while other clients are served', async () => {
    const { gw, upstream } = await rig.start({ limits });
    const token = await signToken();
    // Measured: uWS closes a socket that has not completed its head 9–12 s after it opened, however
    // steadily it trickles (12.0 s and 9.1 s in two runs, one byte every 50 ms). 20 s leaves room on a busy machine.
    const head = upgradeHead(`/ws/a?access_token=${token}`) + 'X'.repeat(100_000);
    let timer: NodeJS.Timeout | undefined;
    const trickle = exchange(
      gw.port,
      (socket) => {
        let i = 0;
        timer = setInterval(() => {
          if (socket.destroyed || i >= head.length) return clearInterval(timer);
          socket.write(head[i++]!);
        }, 50);
        socket.on('close', () => clearInterval(timer));
      },
      { timeoutMs: 20_000 },
    );
    // Meanwhile a normal client is admitted and relayed.
    const ws = await open(`${gw.base}/ws/b?access_token=${token}`);
    const echoed = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    ws.send('still served');
    expect(await echoed).toBe('still served');
    ws.close();
    const r = await trickle;
    clearInterval(timer);
    expect(r.closedByServer).toBe(true);
    expect(r.status).toBeNull();
    expect(r.elapsedMs).toBeLessThan(20_000);
    expect(upstream.handshakes).toHaveLength(1);
  }, 30_000);
});
