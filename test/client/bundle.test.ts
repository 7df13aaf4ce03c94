import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClientBundle } from '../../src/gateway/client-asset.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

describe('GET /client.js (client.serve)', () => {
  let upstream: TestUpstream;
  let on: TestGateway;
  let off: TestGateway;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    on = await startTestGateway(upstream.url, { client: { serve: true } });
    off = await startTestGateway(upstream.url);
  }, 30_000);

  afterAll(async () => {
    await on?.close();
    await off?.close();
    await upstream?.close();
  });

  it('serves one ES module with the documented headers, revalidated by ETag', async () => {
    const res = await fetch(`http://127.0.0.1:${on.port}/client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const etag = res.headers.get('etag')!;
    const body = await res.text();
    // Self-contained: no imports left for the browser to resolve.
    expect(body).not.toMatch(/\bimport\s*[{("'*]|from\s*["']/);
    const mod = (await import(`data:text/javascript;base64,${Buffer.from(body).toString('base64')}`)) as Record<string, unknown>;
    expect(typeof mod['WsguardClient']).toBe('function');
    expect(typeof mod['connect']).toBe('function');
    const again = await fetch(`http://127.0.0.1:${on.port}/client.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('is not served by default (client.serve off): 404 like any unrouted path', async () => {
    const res = await fetch(`http://127.0.0.1:${off.port}/client.js`);
    expect(res.status).toBe(404);
  });

  it('a build failure is an error naming client.serve, and is not cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wsguard-client-'));
    try {
      const entry = join(dir, 'broken.ts');
      await writeFile(entry, "import { nothing } from './missing.ts';\nexport const x = nothing;\n");
      await expect(buildClientBundle(entry)).rejects.toThrow(/^client\.serve: building the wsguard\/client bundle failed: .*missing\.ts/s);
      await writeFile(join(dir, 'missing.ts'), 'export const nothing = 1;\n');
      await expect(buildClientBundle(entry)).resolves.toMatchObject({ etag: expect.stringMatching(/^".+"$/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
