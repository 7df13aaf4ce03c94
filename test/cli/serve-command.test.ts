import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closed, nextMessage, open } from '../helpers/client.ts';
import { signToken, TEST_SECRET } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

const BIN = new URL('../../bin/wsguard.js', import.meta.url).pathname;
const children: ChildProcess[] = [];
let upstream: TestUpstream | null = null;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await upstream?.close();
  upstream = null;
});

/** Resolves when `stream`'s output so far matches `re` (an event, not a sleep; the test timeout bounds the wait). */
function outputMatching(stream: NodeJS.ReadableStream, re: RegExp, already: () => string): Promise<RegExpMatchArray> {
  return new Promise((resolve) => {
    const m = already().match(re);
    if (m) return resolve(m);
    let seen = '';
    const onData = (c: Buffer): void => {
      seen += c.toString();
      const hit = (already() + seen).match(re);
      if (hit) {
        stream.off('data', onData);
        resolve(hit);
      }
    };
    stream.on('data', onData);
  });
}

/** Starts `wsguard serve` on port 0 and resolves with the port from its banner, and its stdout so far. */
function serve(args: string[]): Promise<{
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--set', 'telemetry.admin.port=0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // No wall-clock limit of its own: a slow start on a busy machine is still a start, and a crash
  // rejects through `exited`; the test timeout bounds the rest.
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = out.match(/wsguard listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve({ child, port: Number(m[1]), stdout: () => out, stderr: () => err, exited });
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

describe('wsguard serve', () => {
  it('--demo relays through the built-in upstream and says so', async () => {
    const { child, port, stdout } = await serve(['--demo']);
    const ws = await open(`ws://127.0.0.1:${port}/ws/echo/`);
    const reply = nextMessage(ws);
    ws.send('ping');
    expect((await reply).data.toString()).toBe('ping');
    ws.close();
    await outputMatching(child.stdout!, /self-check: sent/, stdout);
    expect(stdout()).toMatch(/self-check: sent "hello through wsguard", got "hello through wsguard" back/);
  });

  it('drains on SIGTERM: 1001 to every client spread over the window, then exit 0', async () => {
    upstream = await startEchoUpstream();
    const { child, port, exited } = await serve([
      '--route',
      `/ws/=${upstream.url}/ws/`,
      '--set',
      `auth.secret=${TEST_SECRET}`,
      '--set',
      'server.drainWindowMs=600',
      '--set',
      'limits.concurrent.max=10',
    ]);
    const url = `ws://127.0.0.1:${port}/ws/a?access_token=${await signToken()}`;
    const sockets = await Promise.all([0, 1, 2, 3].map(() => open(url)));
    const closes = sockets.map((ws) => closed(ws).then((c) => ({ ...c, at: Date.now() })));
    const started = Date.now();
    child.kill('SIGTERM');
    const results = await Promise.all(closes);
    expect(results.map((r) => r.code)).toEqual([1001, 1001, 1001, 1001]);
    const spread = Math.max(...results.map((r) => r.at)) - Math.min(...results.map((r) => r.at));
    expect(spread).toBeGreaterThanOrEqual(300);
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('exits at once on a second signal', async () => {
    upstream = await startEchoUpstream();
    const { child, port, exited, stderr } = await serve([
      '--route',
      `/ws/=${upstream.url}/ws/`,
      '--set',
      `auth.secret=${TEST_SECRET}`,
      '--set',
      'server.drainWindowMs=30000',
    ]);
    const url = `ws://127.0.0.1:${port}/ws/a?access_token=${await signToken()}`;
    const sockets = await Promise.all([0, 1, 2].map(() => open(url)));
    child.kill('SIGTERM');
    // The second signal must find the drain under way: wait for serve to say it began, not 200 ms.
    await outputMatching(child.stderr!, /SIGTERM received, draining/, stderr);
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(2000);
    for (const s of sockets) s.terminate();
  });

  it('refuses a configuration with no route unless --demo is given (it used to front the demo, admitting anyone)', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--port', '0', '--set', 'telemetry.admin.port=0'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/no routes configured: .*--route PATH=URL.*--demo/);
    expect(r.stdout).not.toContain('listening');
  });

  it('refuses a bad configuration with exit code 3 and names the option', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--set', 'limits.concurrent.max=-2', '--port', '0'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('limits.concurrent.max');
  });
});

describe('wsguard config check', () => {
  it('exits 0 for a good file and 3 naming every bad option', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-cli-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'routes:\n  - path: /ws/\n    upstream: ws://127.0.0.1:8000/ws/\n    allowAnonymous: true\n');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'limits:\n  concurrent:\n    max: "five"\nserver:\n  prot: 80\n');
    const ok = spawnSync(process.execPath, [BIN, 'config', 'check', good], { encoding: 'utf8', timeout: 15_000 });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('ok');
    const ko = spawnSync(process.execPath, [BIN, 'config', 'check', bad], { encoding: 'utf8', timeout: 15_000 });
    expect(ko.status).toBe(3);
    expect(ko.stderr).toContain('limits.concurrent.max');
    expect(ko.stderr).toContain('unknown option server.prot; did you mean server.port?');
  });

  it('config check validates the file merged with WSGUARD_* variables, as serve does, naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-env-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'routes:\n  - path: /ws/\n    upstream: ws://127.0.0.1:8000/ws/\n    allowAnonymous: true\n');
    const env = { ...process.env, WSGUARD_LIMITS__CONCURENT__MAX: '8' };
    const check = spawnSync(process.execPath, [BIN, 'config', 'check', good], { encoding: 'utf8', timeout: 15_000, env });
    expect(check.status).toBe(3);
    expect(check.stderr).toContain('WSGUARD_LIMITS__CONCURENT__MAX: unknown option limits.concurent; did you mean limits.concurrent?');
  });
});
