// Whether dist/ (from `npm run build`) is current: its stamp is newer than every source. Shared by
// bin/wsguard.js (run dist/ or fall back to tsx) and scripts/build.mjs --if-stale (npm start).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** Why dist/ cannot be used, or null when it is current. About 2 ms for the ~150 files and folders. */
export function staleReason() {
  let stampMs;
  try {
    stampMs = JSON.parse(readFileSync(`${root}dist/.build-stamp`, 'utf8')).startedMs;
  } catch {
    return 'no dist/.build-stamp (npm run build makes one)';
  }
  const newer = (path) => statSync(path).mtimeMs > stampMs;
  // A directory's mtime moves when a file in it is added, removed or renamed.
  const walk = (dir) => {
    let entries;
    try {
      if (newer(dir)) return dir;
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return null; // an image that ships dist/ without the sources
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      const hit = e.isDirectory() ? walk(path) : newer(path) ? path : null;
      if (hit) return hit;
    }
    return null;
  };
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    try {
      if (newer(`${root}${file}`)) return `${file} changed after the build`;
    } catch {
      // absent in a runtime image
    }
  }
  const changed = walk(`${root}src`) ?? walk(`${root}cli`);
  return changed ? `${changed.slice(root.length)} changed after the build` : null;
}
