import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared end of the repository's generators (ops/generate.ts, deploy/generate.ts): files rendered
 * from a typed source are written, or checked against what is committed (`--check`, and the tests).
 */
export type Rendered = ReadonlyMap<string, string>;

/** Paths (relative to `root`) whose file on disk differs from what `files` renders, or is missing. */
export function staleFiles(root: string, files: Rendered): string[] {
  const stale: string[] = [];
  for (const [path, text] of files) {
    let disk: string | null;
    try {
      disk = readFileSync(join(root, path), 'utf8');
    } catch {
      disk = null;
    }
    if (disk !== text) stale.push(path);
  }
  return stale;
}

/**
 * Runs a generator module as a script: `--check` exits 1 naming the stale files, otherwise every file
 * is written. Does nothing when the module is imported (by a test).
 */
export function runGenerator(moduleUrl: string, npmScript: string, root: string, render: () => Rendered): void {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  if (process.argv.includes('--check')) {
    const stale = staleFiles(root, render());
    if (stale.length) {
      process.stderr.write(`out of date (run npm run ${npmScript}): ${stale.join(', ')}\n`);
      process.exit(1);
    }
    return;
  }
  for (const [path, text] of render()) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
