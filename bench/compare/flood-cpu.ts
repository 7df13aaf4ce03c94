/**
 * What one flooding generator costs: runs the compare benchmark's `upgrades` task from one generator
 * process and one fixed source address (the rejection row's flood) against `wsguard serve` (compiled
 * build, configured as in the compare table, limits.attempts.max=1000) or, with `--direct`, against
 * the uWS echo upstream itself (sources rotating, as in the handshake row), and prints the
 * generator's CPU per attempt next to the target's.
 *
 *   npx tsx bench/compare/flood-cpu.ts [--seconds 5] [--rounds 3] [--concurrency 32] [--direct] [--mint]
 *                                      [--against OTHER_GENERATOR.ts] [--profile DIR]
 *
 * `--against` alternates rounds with another generator file (e.g. `git show REV:bench/compare/generator.ts
 * > bench/compare/generator-before.ts`), one instance of the target for both, for before/after figures
 * that share the machine's noise. The target's CPU per attempt is its process tree's /proc ticks (10 ms).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, exportSPKI, SignJWT } from 'jose';
import { startEchoChild } from '../lib/echo-server.ts';
import { GeneratorPool, ORIGIN, treeCpuMs, type Context } from './base.ts';
import { statusSummary } from './drive.ts';
import { wsguardSystem } from './system-wsguard.ts';
import { arg } from '../lib/args.ts';

const seconds = Number(arg('seconds', '5'));
const rounds = Number(arg('rounds', '3'));
const concurrency = Number(arg('concurrency', '32'));
const direct = process.argv.includes('--direct');
const mint = process.argv.includes('--mint');
const against = arg('against', '');
const profileDir = arg('profile', '');

const build = spawnSync(process.execPath, [fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url)), '--if-stale'], {
  stdio: 'inherit',
});
if (build.status !== 0) throw new Error('npm run build failed');

const secret = 'bench-secret-that-is-at-least-32-characters-long';
const token = await new SignJWT({ sub: 'b' })
  .setProtectedHeader({ alg: 'HS256' })
  .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
  .sign(new TextEncoder().encode(secret));
const es = await generateKeyPair('ES256');
const echo = await startEchoChild();
const files = [fileURLToPath(new URL('./generator.ts', import.meta.url)), ...(against ? [resolve(against)] : [])];
const gens = await Promise.all(
  files.map((file) => GeneratorPool.start(1, { file, nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] })),
);
const runOn = async (gen: GeneratorPool, task: Record<string, unknown>) => (await gen.run(() => task))[0]!;
const ctx = { tokens: { hs256: token, es256: '', esPublicKeyPem: await exportSPKI(es.publicKey), secret } } as unknown as Context;
const running = direct
  ? { url: `ws://127.0.0.1:${echo.port}`, pid: echo.child.pid!, stop: async () => {} }
  : await wsguardSystem(['limits.attempts.max=1000']).start(echo.port, ctx);
try {
  const task = {
    kind: 'upgrades',
    url: `${running.url}/bench`,
    headers: { origin: ORIGIN, authorization: `Bearer ${token}` },
    concurrency,
    ...(direct ? {} : { fixedSource: arg('source', '127.0.1.251') }),
    ...(mint ? { mintSecret: secret } : {}),
  };
  // One untimed second from each first: JIT on both sides, and the address's 1,000 attempts spent.
  for (const gen of gens) await runOn(gen, { ...task, seconds: 1 });
  for (let round = 0; round < rounds; round++) {
    for (const [i, gen] of gens.entries()) {
      const cpu0 = treeCpuMs(running.pid!);
      const r = await runOn(gen, { ...task, seconds });
      const targetMs = treeCpuMs(running.pid!) - cpu0;
      const attempts = Object.values(r.statuses as Record<string, number>).reduce((a, b) => a + b, 0);
      const kernel = typeof r.systemMs === 'number' ? `, ${Math.round((100 * r.systemMs) / r.cpuMs)}% of it in the kernel` : '';
      console.log(
        `${i === 0 ? 'this generator' : 'against'} → ${direct ? 'direct' : 'wsguard'}: ${Math.round((1000 * attempts) / r.wallMs)} attempts/s ` +
          `(${statusSummary([r])}); generator ${Math.round((1000 * r.cpuMs) / attempts)} µs CPU per attempt ` +
          `(${Math.round((100 * r.cpuMs) / r.wallMs)}% CPU${kernel}), target ${Math.round((1000 * targetMs) / attempts)} µs per attempt ` +
          `(${Math.round((100 * targetMs) / r.wallMs)}% CPU)`,
      );
    }
  }
} finally {
  await running.stop();
  // A graceful stop lets each generator exit by itself, so that --cpu-prof writes its profile.
  await Promise.all(gens.map((g) => g.stop(true)));
  echo.child.kill('SIGKILL');
}
