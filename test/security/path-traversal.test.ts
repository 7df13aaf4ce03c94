import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { REFUSED_PATHS, reachesTheGateway } from './path-cases.ts';
import { rawRequest, startRecordingUpstream, type RecordingUpstream } from './raw-http.ts';

/**
 * Path traversal through the route prefix, end to end: raw HTTP/1.1 upgrade requests (a `ws` client
 * would normalise the path first) against a real gateway in front of an upstream that records every
 * TCP connection and every request target it receives.
 */

let upstream: RecordingUpstream;
let gw: TestGateway;

async function start(): Promise<void> {
  upstream = await startRecordingUpstream();
  gw = await startTestGateway(upstream.url, {
    routes: [
      { path: '/ws/', upstream: `${upstream.url}/ws/`, allowAnonymous: true },
      { path: '/chat', upstream: `${upstream.url}/chat`, allowAnonymous: true },
      { path: '/tenant/', upstream: `${upstream.url}/t/?tenant=a`, allowAnonymous: true },
    ],
    limits: { attempts: { max: 1000 }, concurrent: { max: 1000 } },
  });
}

async function stop(): Promise<void> {
  await gw?.close();
  await upstream?.close();
}

describe('refused paths never reach the upstream', () => {
  beforeAll(start);
  afterAll(stop);

  it.each(REFUSED_PATHS.filter(reachesTheGateway))('400 bad_request for %j', async (path) => {
    const r = await rawRequest(gw.port, path);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('bad_request');
  });

  it('and the upstream saw no TCP connection at all', () => {
    expect(upstream.tcpConnections).toBe(0);
    expect(upstream.targets).toEqual([]);
  });
});

describe('allowed paths reach the expected upstream path, byte for byte', () => {
  beforeAll(start);
  afterAll(stop);

  it.each([
    ['/ws', '/ws/'],
    ['/ws/', '/ws/'],
    ['/ws/a%20b/c', '/ws/a%20b/c'],
    ['/ws/caf%C3%A9/', '/ws/caf%C3%A9/'],
    ['/ws/.../..x', '/ws/.../..x'],
    ['/ws/a;v=1?room=a%20b&access_token=TOKEN&z=1', '/ws/a;v=1?room=a%20b&z=1'],
    ['/chat', '/chat'],
    ['/chat/room/1', '/chat/room/1'],
    ['/tenant/x?q=1', '/t/x?tenant=a&q=1'],
    ['/tenant', '/t/?tenant=a'],
  ])('%j → %j', async (path, expected) => {
    const before = upstream.targets.length;
    const r = await rawRequest(gw.port, path.replace('TOKEN', await signToken()));
    expect(r.status).toBe(101);
    expect(upstream.targets.slice(before)).toEqual([expected]);
  });

  it('a prefix matches on segment boundaries only: /chatadmin is not route /chat', async () => {
    const before = upstream.tcpConnections;
    expect((await rawRequest(gw.port, '/chatadmin')).status).toBe(404);
    expect((await rawRequest(gw.port, '/chat.admin')).status).toBe(404);
    expect(upstream.tcpConnections - before).toBe(0);
  });

  it('plain HTTP requests get the same router: 404 off-route, 400 on a route or a refused path', async () => {
    const plain = { upgrade: false };
    expect((await rawRequest(gw.port, '/chatadmin', plain)).status).toBe(404);
    const onRoute = await rawRequest(gw.port, '/chat/x', plain);
    expect(onRoute.status).toBe(400);
    expect(JSON.parse(onRoute.body).error).toBe('bad_request');
    const traversal = await rawRequest(gw.port, '/ws/%2e%2e/admin', plain);
    expect(traversal.status).toBe(400);
    expect(JSON.parse(traversal.body).message).toMatch(/dot segment/);
  });
});
