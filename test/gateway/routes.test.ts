import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { isGatewayError } from '../../src/errors.ts';
import { createRouter, remainderProblem, upstreamUrl, type RouteMatch } from '../../src/gateway/routes.ts';
import { REFUSED_PATHS } from '../security/path-cases.ts';

function router(routes: NonNullable<RawConfig['routes']>) {
  const config = parseConfig({ routes: routes.map((r) => ({ allowAnonymous: true, ...r })) });
  return createRouter(config.routes);
}

const ws = router([
  { path: '/ws/', upstream: 'ws://app:8000/ws/' },
  { path: '/ws/notifications/', upstream: 'ws://notify:9000/n/' },
  { path: '/chat', upstream: 'ws://chat:7000/chat' },
  { path: '/tenant/', upstream: 'ws://app:8000/t/?tenant=a' },
]);

function target(path: string): string {
  const m = ws(path);
  if (m?.kind !== 'match') throw new Error(`expected a match for ${path}, got ${m === null ? 'no route' : m.message}`);
  return m.upstreamPath;
}

describe('router: segment boundaries', () => {
  it('matches a prefix only on a segment boundary, with or without its trailing slash', () => {
    expect(ws('/chatadmin')).toBeNull();
    expect(ws('/wsx')).toBeNull();
    expect(ws('/w')).toBeNull();
    expect(target('/chat')).toBe('/chat');
    expect(target('/chat/')).toBe('/chat/');
    expect(target('/chat/room/1')).toBe('/chat/room/1');
    expect(target('/ws')).toBe('/ws/');
    expect(target('/ws/')).toBe('/ws/');
    expect(target('/ws/a/b/')).toBe('/ws/a/b/');
  });

  it('prefers the longest prefix', () => {
    expect(target('/ws/notifications/42')).toBe('/n/42');
    expect(target('/ws/notifications')).toBe('/n/');
    expect(target('/ws/notificationsx')).toBe('/ws/notificationsx');
  });

  it('a root route matches every path and still refuses traversal', () => {
    const root = router([{ path: '/', upstream: 'ws://app/base/' }]);
    expect(root('/')).toMatchObject({ kind: 'match', upstreamPath: '/base/' });
    expect(root('/x/y')).toMatchObject({ kind: 'match', upstreamPath: '/base/x/y' });
    expect(root('/../etc')).toMatchObject({ kind: 'refused' });
  });
});

describe('router: refused remainders', () => {
  it.each(REFUSED_PATHS)('refuses %j', (path) => {
    expect(ws(path)).toMatchObject({ kind: 'refused' });
  });

  it('leaves allowed percent-encodings and odd-but-harmless segments byte for byte', () => {
    expect(target('/ws/a%20b')).toBe('/ws/a%20b');
    expect(target('/ws/caf%C3%A9')).toBe('/ws/caf%C3%A9');
    expect(target('/ws/...')).toBe('/ws/...');
    expect(target('/ws/..a/.b/a..')).toBe('/ws/..a/.b/a..');
    expect(target('/ws/a;b=c')).toBe('/ws/a;b=c');
    expect(target('/ws/%252e%252e/x')).toBe('/ws/%252e%252e/x');
    expect(target("/ws/~user/!$&'()*+,=:@")).toBe("/ws/~user/!$&'()*+,=:@");
  });

  it('explains the refusal', () => {
    expect(remainderProblem('/../a')).toMatch(/dot segment/);
    expect(remainderProblem('/a%2fb')).toMatch(/encoded slash/);
    expect(remainderProblem('/a//b')).toMatch(/empty segment/);
    expect(remainderProblem('/%zz')).toMatch(/percent-encoding/);
    expect(remainderProblem('/a\\b')).toMatch(/not allowed/);
  });
});

describe('upstreamUrl', () => {
  const match = (path: string) => ws(path) as RouteMatch;

  it('keeps the upstream’s own query first, then the client’s query (token already removed)', () => {
    expect(upstreamUrl(match('/tenant/x'), '?room=a%20b&x=1').href).toBe('ws://app:8000/t/x?tenant=a&room=a%20b&x=1');
    expect(upstreamUrl(match('/tenant'), '').href).toBe('ws://app:8000/t/?tenant=a');
    expect(upstreamUrl(match('/ws/a'), '?q=1').href).toBe('ws://app:8000/ws/a?q=1');
    expect(upstreamUrl(match('/ws/a'), '').href).toBe('ws://app:8000/ws/a');
  });

  it('refuses, as defence in depth, a match whose path would not stay inside the upstream path', () => {
    const forged: RouteMatch = { ...match('/ws/a'), upstreamPath: '/ws/../admin' };
    let thrown: unknown;
    try {
      upstreamUrl(forged, '');
    } catch (err) {
      thrown = err;
    }
    expect(isGatewayError(thrown) && thrown.code).toBe('bad_request');
    const outside: RouteMatch = { ...match('/ws/a'), upstreamPath: '/admin' };
    expect(() => upstreamUrl(outside, '')).toThrow(/inside the route/);
  });
});
