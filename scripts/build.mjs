// `npm run build`: compiles src/ and cli/ to dist/ with tsc (relative `.ts` imports rewritten to `.js`),
// copies the files tsc does not emit (worker entry, stylesheets), and writes dist/.build-stamp last.
// bin/wsguard.js runs dist/ only while no source is newer than the stamp, so an edit to src/ after a
// build falls back to tsx instead of running stale JavaScript.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { staleReason } from '../bin/dist-current.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// --if-stale (npm start): keep a current dist/ rather than spend ~8 s rebuilding it.
if (process.argv.includes('--if-stale') && staleReason() === null) process.exit(0);
const dist = join(root, 'dist');
// Taken before tsc reads anything: a file saved while the build runs is newer than the stamp.
const startedMs = Date.now();

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  process.exit(tsc.status ?? 1);
}

function copyAssets(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) copyAssets(rel);
    else if (!entry.name.endsWith('.ts')) {
      mkdirSync(dirname(join(dist, rel)), { recursive: true });
      copyFileSync(join(root, rel), join(dist, rel));
    }
  }
}
copyAssets('src');
copyAssets('cli');

// src/telemetry/start.ts reads the version from '../../package.json', which from dist/src/telemetry is this file.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(
  join(dist, 'package.json'),
  JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', private: true }, null, 2) + '\n',
);
writeFileSync(join(dist, '.build-stamp'), JSON.stringify({ startedMs }) + '\n');
console.log(`dist/ built in ${((Date.now() - startedMs) / 1000).toFixed(1)} s`);
