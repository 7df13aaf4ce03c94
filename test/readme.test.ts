import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The README's "Testing any WebSocket endpoint" block, run as written (one bash script, `set -e`)
 * against `wsguard serve --demo`, which is what `npm start` runs. Only the port (the demo listens on
 * port 0 here, not 8080) and `npx wsguard` (the repository's own bin, so that the outputs land in a
 * temp dir) are substituted. Before the demo had its own limits, the probe locked localhost out with
 * `429 attempt_limit` and flood/storm could never pass from one address.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/wsguard.js');

function readmeBlock(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Testing any WebSocket endpoint'));
  const m = section.match(/```sh\n([\s\S]*?)```/);
  if (!m) throw new Error('README has no sh block under "Testing any WebSocket endpoint"');
  return m[1]!;
}

describe("the README's toolkit examples against npm start's demo", () => {
  let child: ChildProcess;
  let port = 0;
  let out = '';

  beforeAll(async () => {
    child = spawn(process.execPath, [BIN, 'serve', '--demo', '--port', '0', '--set', 'telemetry.admin.port=0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    port = await new Promise<number>((resolve, reject) => {
      // A bound for a hang: node + tsx can take many seconds to start on a loaded 2-core machine.
      const timer = setTimeout(() => reject(new Error(`no banner within 40 s: ${out}`)), 40_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = out.match(/wsguard listening on ws:\/\/127\.0\.0\.1:(\d+)/);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`serve --demo exited ${code}: ${out}`)));
    });
  }, 45_000);

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('runs every command of the block with exit 0', async () => {
    const block = readmeBlock();
    expect(block).toContain('127.0.0.1:8080');
    // The banner prints the secret the README exports.
    const secret = block.match(/export JWT_SECRET=(\S+)/)?.[1];
    expect(out).toContain(`export JWT_SECRET=${secret}`);
    const script = block.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`).replaceAll('npx wsguard', `node "${BIN}"`);
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-readme-'));
    try {
      const run = spawn('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      run.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      run.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
      expect(code, log).toBe(0);
      expect(log).toMatch(/PASS/);
      expect(log).not.toMatch(/\bFAIL\b/);
      expect(statSync(join(dir, 'run.html')).size).toBeGreaterThan(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
