import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, rejectionReason } from '../../../cli/engine/connection.ts';

let server: ReturnType<typeof createServer>;
let url: string;

beforeAll(async () => {
  // Answers the upgrade as the query says: a wsguard-style JSON body, or a bare 429 with or without Retry-After.
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const body = q.get('body') ?? '';
    const retry = q.has('retry') ? 'Retry-After: 2\r\n' : '';
    socket.end(`HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n${retry}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('rejection reasons (429s split by what the server said)', () => {
  it.each([
    [`?body=${encodeURIComponent('{"error":"conn_limit","message":"x"}')}&retry`, 'conn_limit'],
    ['?retry', 'with Retry-After'],
    ['?body=slow%20down', 'without Retry-After'],
  ])('%s → %s', async (query, reason) => {
    const r = await connect({ url: `${url}${query}`, handshakeTimeoutMs: 2_000 });
    expect(r.ok).toBe(false);
    expect(r.ok === false && [r.outcome, r.detail]).toEqual(['rejected.429', reason]);
  });

  it('ignores a JSON body without a string error field', () => {
    expect(rejectionReason('{"error":5}', false)).toBe('without Retry-After');
  });
});
