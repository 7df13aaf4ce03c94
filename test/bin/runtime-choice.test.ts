import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A checkout in miniature: the real bin/, a dist/ and a cli/ that each say which one ran. */
function fakeCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-bin-'));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  mkdirSync(join(dir, 'cli'));
  mkdirSync(join(dir, 'src/deep'), { recursive: true });
  writeFileSync(join(dir, 'cli/main.ts'), "const ran: string = 'tsx';\nconsole.log(ran);\n");
  writeFileSync(join(dir, 'src/deep/module.ts'), 'export {};\n');
  mkdirSync(join(dir, 'dist/cli'), { recursive: true });
  writeFileSync(join(dir, 'dist/cli/main.js'), "console.log('dist');\n");
  // The stamp says the build started a minute from now: every source is older.
  writeFileSync(join(dir, 'dist/.build-stamp'), JSON.stringify({ startedMs: Date.now() + 60_000 }));
  return dir;
}

const run = (dir: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(dir, 'bin/wsguard.js')], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('bin/wsguard.js: compiled build or tsx', () => {
  it('runs dist/ while it is current', () => {
    dir = fakeCheckout();
    expect(run(dir).stdout.trim()).toBe('dist');
  });

  it('falls back to tsx when a source under src/ is newer than the build, and WSG_RUNTIME=dist refuses', () => {
    dir = fakeCheckout();
    const later = new Date(Date.now() + 120_000);
    utimesSync(join(dir, 'src/deep/module.ts'), later, later);
    expect(run(dir).stdout.trim()).toBe('tsx');
    const strict = run(dir, { WSG_RUNTIME: 'dist' });
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain('src/deep/module.ts changed after the build');
  });

  it('falls back to tsx without a build stamp, and WSG_RUNTIME=tsx forces it', () => {
    dir = fakeCheckout();
    expect(run(dir, { WSG_RUNTIME: 'tsx' }).stdout.trim()).toBe('tsx');
    rmSync(join(dir, 'dist/.build-stamp'));
    expect(run(dir).stdout.trim()).toBe('tsx');
  });
});
