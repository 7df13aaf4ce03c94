import { afterEach, describe, expect, it } from 'vitest';
import { encodeClaimValue } from '../../src/gateway/upstream-headers.ts';
import { open } from '../helpers/client.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { acceptResponse, startRawServer } from '../relay/upstream-servers.ts';

/** Attack suite, issue 7 item 9: claim values outside Latin-1, or with CR/LF, as upstream headers. */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const CLAIMS = {
  sub: 'jürgen€',
  name: 'Eve\r\nX-Injected: 1',
  tenant: '50%off',
  email: 'eve@example.com',
  roles: ['a', 'b c'],
};

/** An upstream that records the raw bytes of each request head (so both legs are compared byte for byte). */
async function recordingUpstream() {
  const heads: string[] = [];
  const server = await startRawServer((socket, request) => {
    heads.push(request.head);
    socket.write(acceptResponse(request.key));
  });
  stops.push(() => server.close());
  return { url: server.url.replace(/\/$/, ''), heads };
}

function headerLines(head: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    out.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return out;
}

describe('claim headers on both legs', () => {
  it('percent-encodes non-ASCII, controls, spaces and %, and both legs send the same bytes', async () => {
    const seen: Record<string, Map<string, string>> = {};
    for (const leg of ['lean', 'ws'] as const) {
      const upstream = await recordingUpstream();
      const gw = await startTestGateway(upstream.url, {
        upstream: { client: leg },
        auth: { claimHeaders: { 'X-Auth-Sub': 'sub', 'X-Name': 'name', 'X-Tenant': 'tenant', 'X-Email': 'email', 'X-Roles': 'roles' } },
      });
      stops.push(() => gw.close());
      // Before the fix the ws leg refused every dial here (Node's http rejects such header values: 502).
      const ws = await open(`${gw.base}/ws/a?access_token=${await signToken(CLAIMS)}`);
      ws.terminate();
      expect(upstream.heads).toHaveLength(1);
      // startRawServer reads the head as latin1: a raw UTF-8 byte would show up as mojibake here.
      seen[leg] = headerLines(upstream.heads[0]!);
      expect(seen[leg].has('x-injected')).toBe(false);
    }
    for (const leg of ['lean', 'ws']) {
      const h = seen[leg]!;
      expect(h.get('x-auth-sub')).toBe('j%C3%BCrgen%E2%82%AC');
      expect(h.get('x-name')).toBe('Eve%0D%0AX-Injected:%201');
      expect(h.get('x-tenant')).toBe('50%25off');
      expect(h.get('x-email')).toBe('eve@example.com');
      expect(h.get('x-roles')).toBe('["a","b%20c"]');
      // The documented way back (docs/contracts.md).
      expect(decodeURIComponent(h.get('x-auth-sub')!)).toBe(CLAIMS.sub);
      expect(decodeURIComponent(h.get('x-name')!)).toBe(CLAIMS.name);
      expect(decodeURIComponent(h.get('x-tenant')!)).toBe(CLAIMS.tenant);
    }
  });
});

describe('encodeClaimValue', () => {
  it('leaves visible ASCII other than % unchanged', () => {
    expect(encodeClaimValue('user-1_@.:/+=!~*()')).toBe('user-1_@.:/+=!~*()');
  });

  it.each(['€', 'a b', '\t', '\u0000', '%', '%41', 'ünïcödé 🙂', '\r\n'])('round-trips %j through decodeURIComponent', (value) => {
    const encoded = encodeClaimValue(value);
    expect(encoded).toMatch(/^[\x21-\x7e]*$/);
    expect(decodeURIComponent(encoded)).toBe(value);
  });
});
