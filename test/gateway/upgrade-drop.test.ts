import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { certDir, makePair } from '../tls/certs.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';

const BIN = new URL('../../bin/wsguard.js', import.meta.url).pathname;

/**
 * glibc's debugging knobs make the freed tail of a shrunk allocation deterministic: no tcache (the
 * freed block goes where perturb applies) and every freed byte set to 0x10. uWS 20.30's
 * `HttpResponse::cork` read the HTTP state of an async upgrade from exactly that freed memory and took
 * 0x10 for HTTP_CONNECTION_CLOSE: with `res.cork(() => res.upgrade(...))` every connection was closed
 * right after its 101 (1006, no close frame). In normal runs the same read saw whatever had reused
 * the memory, which dropped a connection now and then (src/gateway/cork-anchor.ts).
 */
const FREED_MEMORY_IS_0X10 = 'glibc.malloc.tcache_count=0:glibc.malloc.perturb=16';

/** `wsguard serve` (a child process, so the glibc settings apply to it alone) in front of a fresh echo upstream. */
async function serve(settings: string[]): Promise<{ url: string; stderr: () => string }> {
  const upstream = await startEchoUpstream();
  onTestFinished(() => upstream.close());
  const child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--port',
      '0',
      '--route',
      `/ws/=${upstream.url}/ws/`,
      '--set',
      'routes.0.allowAnonymous=true',
      '--set',
      'telemetry.admin.port=0',
      ...settings.flatMap((s) => ['--set', s]),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GLIBC_TUNABLES: FREED_MEMORY_IS_0X10 } },
  );
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = out.match(/wsguard listening on (wss?:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`wsguard exited with ${code}: ${err}`)));
  });
  return { url, stderr: () => err };
}

/** Opens a connection, then sends one message and resolves with whether it came back before the socket closed. */
async function openAndEcho(url: string): Promise<{ echoed: boolean; closeCode: number | null }> {
  const ws = new WebSocket(url, { rejectUnauthorized: false });
  let closeCode: number | null = null;
  const closed = new Promise<void>((r) =>
    ws.once('close', (code) => {
      closeCode = code;
      r();
    }),
  );
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('ping');
  const echoed = await Promise.race([
    new Promise<boolean>((r) => ws.once('message', (m) => r(m.toString() === 'ping'))),
    closed.then(() => false),
  ]);
  ws.close();
  await closed;
  return { echoed, closeCode: echoed ? null : closeCode };
}

describe('an async upgrade is not dropped by uWS right after its 101', () => {
  for (const scheme of ['ws', 'wss'] as const) {
    it(`${scheme}://: ten sequential connections each relay an echo, with freed memory filled with 0x10`, async () => {
      const settings: string[] = [];
      if (scheme === 'wss') {
        const pair = makePair(certDir(), 'served', 'localhost');
        settings.push(`server.tls.certFile=${pair.certFile}`, `server.tls.keyFile=${pair.keyFile}`);
      }
      const gw = await serve(settings);
      expect(gw.url.startsWith(`${scheme}://`)).toBe(true);
      const results = [];
      for (let i = 0; i < 10; i++) results.push(await openAndEcho(`${gw.url}/ws/echo`));
      // Before the fix: ten of ten `{ echoed: false, closeCode: 1006 }`.
      expect(results).toEqual(Array.from({ length: 10 }, () => ({ echoed: true, closeCode: null })));
      // Nor did the fix trade the drop for uWS.js's per-upgrade "must be made from within a corked callback" warning.
      expect(gw.stderr()).not.toMatch(/corked callback/);
    });
  }
});
