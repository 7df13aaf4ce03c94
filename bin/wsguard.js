#!/usr/bin/env node
// Runs the compiled CLI from dist/ when `npm run build` produced it and no source has changed since;
// otherwise runs the TypeScript through tsx's loader, so that a checkout runs without a build step and
// an edit to src/ is never shadowed by stale JavaScript. WSG_RUNTIME=tsx forces the loader;
// WSG_RUNTIME=dist refuses to start without a current build (the container image sets it). Not a
// WSGUARD_* name: that prefix is the configuration's, and serve refuses an unknown option.
import { staleReason } from './dist-current.js';

const mode = process.env.WSG_RUNTIME;
const reason = mode === 'tsx' ? 'WSG_RUNTIME=tsx' : staleReason();
if (reason === null) {
  await import('../dist/cli/main.js');
} else if (mode === 'dist') {
  console.error(`wsguard: WSG_RUNTIME=dist but dist/ is not current: ${reason}`);
  process.exit(1);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
