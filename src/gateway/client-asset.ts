import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from 'uWebSockets.js';

/** The wsguard/client bundle as served at GET /client.js (client.serve). */
export interface ClientBundle {
  body: Buffer;
  etag: string;
}

export const CLIENT_BUNDLE_PATH = '/client.js';
// Beside this module: index.ts under tsx, index.js in the compiled build (dist/).
const ENTRY = fileURLToPath(new URL(`../client/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** One build per process and entry: every gateway started in it serves the same bytes. */
const cached = new Map<string, Promise<ClientBundle>>();

/**
 * Bundles src/client/index.ts into one ES module with esbuild's JS API. A failure is a start-up
 * error naming client.serve, never a crash on the first request.
 */
export function buildClientBundle(entry: string = ENTRY): Promise<ClientBundle> {
  let p = cached.get(entry);
  if (!p) {
    p = build(entry).catch((err: unknown) => {
      cached.delete(entry);
      throw new Error(`client.serve: building the wsguard/client bundle failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    });
    cached.set(entry, p);
  }
  return p;
}

async function build(entry: string): Promise<ClientBundle> {
  // Loaded only when client.serve is on: a gateway that does not serve the bundle never starts esbuild.
  const esbuild = await import('esbuild');
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output');
  const body = Buffer.from(file.contents);
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * GET /client.js. No version in the URL, so caches revalidate after five minutes (ETag, 304). Module
 * scripts are fetched in CORS mode: a page on the app's own origin may import it, and the code is
 * public, so any origin may (no credentials involved).
 */
export function serveClientBundle(app: TemplatedApp, bundle: ClientBundle): void {
  app.get(CLIENT_BUNDLE_PATH, (res, req) => {
    const notModified = req.getHeader('if-none-match') === bundle.etag;
    res.cork(() => {
      res.writeStatus(notModified ? '304 Not Modified' : '200 OK');
      res.writeHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.writeHeader('Cache-Control', 'public, max-age=300');
      res.writeHeader('ETag', bundle.etag);
      res.writeHeader('Access-Control-Allow-Origin', '*');
      res.writeHeader('X-Content-Type-Options', 'nosniff');
      res.end(notModified ? undefined : bundle.body);
    });
  });
}
