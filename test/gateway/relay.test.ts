import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RawConfig } from '../../src/config/schema.ts';
import { attempt, closed, nextMessage, open, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;

afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
});

let leg: 'lean' | 'ws' = 'lean';

async function setup(overrides: RawConfig = {}, upstreamOptions: Parameters<typeof startEchoUpstream>[0] = {}) {
  upstream = await startEchoUpstream(upstreamOptions);
  gw = await startTestGateway(upstream.url, { upstream: { client: leg }, ...overrides });
  return { upstream, gw, token: await signToken({ sub: 'alice', tenant: 't-9' }) };
}

function collect(ws: WebSocket, count: number, timeoutMs = 15_000): Promise<Array<{ data: Buffer; isBinary: boolean }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ data: Buffer; isBinary: boolean }> = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length}/${count} messages`)), timeoutMs);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      got.push({ data, isBinary });
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe.each(['lean', 'ws'] as const)('through the %s upstream leg', (name) => {
  beforeEach(() => {
    leg = name;
  });

  describe('relay fidelity', () => {
    it('relays text and binary both ways, byte for byte, with their opcodes', async () => {
      const { gw, token } = await setup();
      const ws = await open(`${gw.base}/ws/echo?access_token=${token}`);
      const binary = randomBytes(4096);
      const replies = collect(ws, 3);
      ws.send('héllo wörld ✓');
      ws.send(binary);
      ws.send(Buffer.alloc(0), { binary: true });
      const [text, bin, empty] = await replies;
      expect(text).toEqual({ data: Buffer.from('héllo wörld ✓'), isBinary: false });
      expect(bin!.isBinary).toBe(true);
      expect(bin!.data.equals(binary)).toBe(true);
      expect(empty).toEqual({ data: Buffer.alloc(0), isBinary: true });
      ws.close();
    });

    it('relays a 1 MiB message intact', async () => {
      const { gw, token } = await setup();
      const ws = await open(`${gw.base}/ws/echo?access_token=${token}`);
      const big = randomBytes(1024 * 1024);
      const reply = nextMessage(ws);
      ws.send(big);
      const { data } = await reply;
      expect(data.length).toBe(big.length);
      expect(data.equals(big)).toBe(true);
      ws.close();
    });

    it('keeps order over 10,000 messages', async () => {
      const { gw, token } = await setup({ messages: { rate: { perMinute: 1_000_000, burst: 20_000 } } });
      const ws = await open(`${gw.base}/ws/echo?access_token=${token}`);
      const n = 10_000;
      const replies = collect(ws, n);
      for (let i = 0; i < n; i++) ws.send(`m${i}`);
      const got = await replies;
      const firstOutOfOrder = got.findIndex((m, i) => m.data.toString() !== `m${i}`);
      expect(firstOutOfOrder).toBe(-1);
      ws.close();
    });
  });

  describe('what reaches the upstream', () => {
    it('passes path and query through and strips the token', async () => {
      const { gw, upstream, token } = await setup();
      (await open(`${gw.base}/ws/notifications/42?room=a%20b&access_token=${token}&x=1`)).close();
      expect(upstream.handshakes[0]!.url).toBe('/ws/notifications/42?room=a%20b&x=1');
    });

    it('sends trusted X-Forwarded-For/Proto and claim headers, and drops incoming copies and Authorization', async () => {
      const { gw, upstream, token } = await setup({ auth: { claimHeaders: { 'X-Auth-Sub': 'sub', 'X-Tenant': 'tenant' } } });
      (
        await open(`${gw.base}/ws/a`, [], {
          headers: {
            authorization: `Bearer ${token}`,
            'x-forwarded-for': '6.6.6.6',
            'x-forwarded-proto': 'https',
            'x-auth-sub': 'mallory',
            'x-tenant': 'evil',
            'user-agent': 'relay-test',
          },
        })
      ).close();
      const h = upstream.handshakes[0]!.headers;
      expect(h['x-forwarded-for']).toBe('127.0.0.1');
      expect(h['x-forwarded-proto']).toBe('http');
      expect(h['x-auth-sub']).toBe('alice');
      expect(h['x-tenant']).toBe('t-9');
      expect(h['authorization']).toBeUndefined();
      expect(h['user-agent']).toBe('relay-test');
      expect(JSON.stringify(h)).not.toContain(token);
    });

    it('negotiates subprotocols with the upstream and never echoes nor relays a token entry', async () => {
      const { gw, upstream, token } = await setup({}, { select: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false) });
      const a = await attempt(`${gw.base}/ws/a`, [`bearer.${token}`, 'chat.v1', 'chat.v2']);
      if (a.kind !== 'open') throw new Error(`expected open, got ${a.kind}`);
      expect(a.protocol).toBe('chat.v2');
      expect(upstream.handshakes[0]!.headers['sec-websocket-protocol']!.split(/\s*,\s*/)).toEqual(['chat.v1', 'chat.v2']);
      expect(upstream.handshakes[0]!.protocol).toBe('chat.v2');
      a.ws.close();
    });

    it('refuses (400, naming auth.subprotocolMarker) a token subprotocol whose answer could select nothing (lean leg; ws fails such a dial)', async () => {
      if (leg !== 'lean') return;
      const { gw, token } = await setup({}, { select: () => false });
      // Before the marker existed this was a 101 selecting no subprotocol, which browsers and `ws` fail (1006).
      const r = rejected(await attempt(`${gw.base}/ws/a`, [`bearer.${token}`, 'chat.v1']));
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).message).toContain("'wsguard.auth'");
      expect(r.body).not.toContain(token);
    });

    it('refuses a lone token subprotocol before dialling, and selects the marker for the browser form', async () => {
      const { gw, upstream, token } = await setup({}, { select: () => false });
      expect(rejected(await attempt(`${gw.base}/ws/a`, [`bearer.${token}`])).status).toBe(400);
      expect(upstream.handshakes).toHaveLength(0);
      const a = await attempt(`${gw.base}/ws/a`, ['wsguard.auth', `bearer.${token}`]);
      if (a.kind !== 'open') throw new Error(`expected open, got ${a.kind === 'rejected' ? a.body : a.error.message}`);
      expect(a.protocol).toBe('wsguard.auth');
      // Neither the marker nor the token reaches the app.
      expect(upstream.handshakes[0]!.headers['sec-websocket-protocol']).toBeUndefined();
      const reply = nextMessage(a.ws);
      a.ws.send('through');
      expect((await reply).data.toString()).toBe('through');
      a.ws.close();
    });
  });

  describe('close codes', () => {
    it('maps client close codes to the upstream', async () => {
      const { gw, upstream, token } = await setup();
      for (const [sent, expected] of [
        [1000, 1000],
        [4321, 4321],
        [1001, 1001],
      ] as const) {
        const next = upstream.nextSocket();
        const ws = await open(`${gw.base}/ws/a?access_token=${token}`);
        const up = await next;
        const upClosed = new Promise<[number, string]>((r) => up.once('close', (c, reason) => r([c, reason.toString()])));
        ws.close(sent, 'bye');
        expect(await upClosed).toEqual([expected, 'bye']);
      }
      // No close frame at all from the client: the upstream hears 1001 going away.
      const next = upstream.nextSocket();
      const ws = await open(`${gw.base}/ws/a?access_token=${token}`);
      const up = await next;
      const upClosed = new Promise<number>((r) => up.once('close', (c) => r(c)));
      ws.terminate();
      expect(await upClosed).toBe(1001);
    });

    it('maps upstream close codes to the client, and an upstream drop to 1014', async () => {
      const { gw, upstream, token } = await setup();
      for (const [sent, expected] of [
        [1000, 1000],
        [1011, 1011],
        [4500, 4500],
        [1013, 1013],
      ] as const) {
        const next = upstream.nextSocket();
        const ws = await open(`${gw.base}/ws/a?access_token=${token}`);
        const up = await next;
        const done = closed(ws);
        up.close(sent, 'app says bye');
        expect(await done).toEqual({ code: expected, reason: 'app says bye' });
      }
      const next = upstream.nextSocket();
      const ws = await open(`${gw.base}/ws/a?access_token=${token}`);
      const up = await next;
      const done = closed(ws);
      up.terminate();
      expect((await done).code).toBe(1014);
    });

    it('delivers upstream messages sent right after its handshake, before the client opened', async () => {
      upstream = await startEchoUpstream();
      const wssGreeting = upstream.nextSocket().then((up) => {
        up.send('welcome-1');
        up.send('welcome-2');
      });
      gw = await startTestGateway(upstream.url, { upstream: { client: leg } });
      // Listen from construction: the greetings may arrive in the same read as the 101.
      const ws = new WebSocket(`${gw.base}/ws/a?access_token=${await signToken()}`);
      const msgs = await collect(ws, 2, 5000);
      await wssGreeting;
      expect(msgs.map((m) => m.data.toString())).toEqual(['welcome-1', 'welcome-2']);
      ws.close();
    });
  });
});
