import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop } from 'esbuild';

/**
 * Builds the status page (page.ts + uPlot + CSS) into one script and one stylesheet, in memory.
 *
 * Built when the admin listener starts rather than committed: the page can never drift from its
 * source, no generated file sits in the tree, and a broken page stops start-up with a clear error
 * instead of serving a stale bundle. esbuild is already a runtime dependency (tsx runs on it). The
 * result is cached per process, so tests that start many servers build once; a build took about
 * 150 ms on the 2-core dev box (bench/status-page.ts prints it).
 */
export interface StatusBundle {
  html: string;
  js: string;
  css: string;
  /** Strong validator for the three assets (they change together). */
  etag: string;
  buildMs: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));

export const STATUS_ASSET_PATHS = { page: '/status', js: '/status/app.js', css: '/status/app.css' } as const;

/** The page allows only its own script, stylesheet and API calls (uPlot styles through the CSSOM, which CSP does not restrict). */
export const STATUS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function html(etag: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wsguard status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STATUS_ASSET_PATHS.css}?v=${etag}">
<script defer src="${STATUS_ASSET_PATHS.js}?v=${etag}"></script>
</head>
<body>
<main id="app"><noscript>The status page needs JavaScript; the same figures are at /api/monitoring/websocket/series/.</noscript></main>
</body>
</html>
`;
}

async function buildOnce(): Promise<StatusBundle> {
  const started = performance.now();
  let result: Awaited<ReturnType<typeof build<{ write: false; outdir: string }>>>;
  try {
    result = await build({
      entryPoints: [join(HERE, import.meta.url.endsWith('.ts') ? 'page.ts' : 'page.js')],
      bundle: true,
      minify: true,
      write: false,
      format: 'iife',
      target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
      outdir: '/status-bundle',
      legalComments: 'none',
      // uPlot is MIT-licensed; its notice travels with the bundle.
      banner: { js: '/*! wsguard status page. Includes uPlot 1.6.32, (c) Leon Sorokin, MIT License. */' },
      logLevel: 'silent',
    });
  } finally {
    // esbuild keeps a service process (about 12 MB resident) alive after a build; the sidecar needs no more builds.
    await stop();
  }
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))?.text;
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'))?.text;
  if (!js || !css) throw new Error('esbuild produced no script or no stylesheet');
  const etag = createHash('sha256').update(js).update(css).digest('hex').slice(0, 16);
  return { html: html(etag), js, css, etag, buildMs: performance.now() - started };
}

let cached: Promise<StatusBundle> | undefined;

/** The bundle, built on first use; a failed build is not cached, so the next start tries again. */
export function statusBundle(): Promise<StatusBundle> {
  cached ??= buildOnce().catch((err: unknown) => {
    cached = undefined;
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`the status page could not be built (${detail}); fix it or set telemetry.monitoring.statusPage: off`, { cause: err });
  });
  return cached;
}
