/**
 * Comparison benchmark (issue 12): wsguard as deployed against a direct uWS echo, nginx (1 worker),
 * HAProxy (1 thread) and a plain ws-to-ws Node proxy, one table with ratios to direct and to nginx.
 *
 *   npm run bench -- compare [--quick] [--rounds 2] [--systems direct,wsguard,...] [--scenarios capacity,...]
 *                            [--generators 2] [--markdown] [--baseline DIR]
 *
 * Every system under test runs in its own process(es); the load comes from generator processes
 * (bench/compare/generator.ts), each dialling from its own 127.0.g.x range and reporting its CPU.
 * A fresh instance of each system serves each scenario, systems alternating (reversed every other
 * round) so that machine noise hits all alike; the figure is the median round (of two, the worse).
 * --quick runs every system and scenario briefly and exits 1 naming any cell without a figure.
 * --baseline DIR adds a column "baseline": wsguard from another checkout (e.g. `git worktree add DIR
 * <commit>` and `npm run build` there), configured like the wsguard column, for before/after figures
 * from one run with the rounds alternating.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { staleReason } from '../bin/dist-current.js';
import { startEchoChild } from './lib/echo-server.ts';
import { GeneratorPool, medianRound, ORIGIN, type Context, type Figure, type Scenario, type System, type Tokens } from './compare/base.ts';
import { capacity } from './compare/scenario-capacity.ts';
import { handshake } from './compare/scenario-handshake.ts';
import { idleMemory } from './compare/scenario-idle-memory.ts';
import { latency } from './compare/scenario-latency.ts';
import { noisy } from './compare/scenario-noisy.ts';
import { rejection } from './compare/scenario-rejection.ts';
import { storm } from './compare/scenario-storm.ts';
import { direct } from './compare/system-direct.ts';
import { haproxy } from './compare/system-haproxy.ts';
import { nginx } from './compare/system-nginx.ts';
import { wsProxy } from './compare/system-ws-proxy.ts';
import { wsguardSystem } from './compare/system-wsguard.ts';

const SYSTEMS: Record<string, System> = { direct, wsguard: wsguardSystem(), nginx, haproxy, 'ws-proxy': wsProxy };
const SCENARIOS: Record<string, Scenario> = { capacity, latency, handshake, rejection, noisy, 'idle-memory': idleMemory, storm };

interface Options {
  quick: boolean;
  rounds: number;
  systems: string[];
  scenarios: string[];
  generators: number;
  markdown: boolean;
  baseline: string | null;
}

function parseArgs(argv: string[]): Options {
  const args = argv[0] === 'compare' ? argv.slice(1) : argv;
  if (argv[0] !== 'compare') throw new Error('usage: npm run bench -- compare [--quick] [--rounds N] [--systems a,b] [--scenarios a,b]');
  const o: Options = {
    quick: false,
    rounds: 0,
    systems: Object.keys(SYSTEMS),
    scenarios: Object.keys(SCENARIOS),
    generators: 2,
    markdown: false,
    baseline: null,
  };
  let systemsGiven = false;
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.replace(/^--/, '');
    const value = () => args[++i] ?? '';
    if (name === 'quick') o.quick = true;
    else if (name === 'markdown') o.markdown = true;
    else if (name === 'rounds') o.rounds = Number(value());
    else if (name === 'generators') o.generators = Number(value());
    else if (name === 'systems') {
      o.systems = value().split(',');
      systemsGiven = true;
    } else if (name === 'baseline') o.baseline = resolve(value());
    else if (name === 'scenarios') o.scenarios = value().split(',');
    else throw new Error(`unknown option --${name}`);
  }
  if (!o.rounds) o.rounds = o.quick ? 1 : 2;
  if (o.baseline) {
    const bin = join(o.baseline, 'bin', 'wsguard.js');
    if (!existsSync(bin)) throw new Error(`--baseline: no ${bin} (a checkout of wsguard, built with npm run build)`);
    SYSTEMS.baseline = wsguardSystem([], { name: 'baseline', bin });
    if (!systemsGiven) o.systems.splice(o.systems.indexOf('wsguard') + 1, 0, 'baseline');
  }
  for (const s of o.systems) if (!SYSTEMS[s]) throw new Error(`--systems: unknown ${s} (known: ${Object.keys(SYSTEMS).join(', ')})`);
  for (const s of o.scenarios)
    if (!SCENARIOS[s]) throw new Error(`--scenarios: unknown ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);
  if (!Number.isInteger(o.generators) || o.generators < 1 || o.generators > 200) throw new Error('--generators: an integer 1–200');
  return o;
}

async function makeTokens(): Promise<Tokens> {
  const secret = 'bench-secret-that-is-at-least-32-characters-long';
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const hs256 = await new SignJWT({ sub: 'bench' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const es256 = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(exp).sign(privateKey);
  return { hs256, es256, secret, esPublicKeyPem: await exportSPKI(publicKey) };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  // The deployed form is the compiled build: build dist/ unless it is current.
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url)), '--if-stale'], {
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('npm run build failed: wsguard cannot run compiled');
  const stale = staleReason();
  if (stale) throw new Error(`dist/ is not current after the build: ${stale}`);

  const log = (m: string) => process.stderr.write(`${m}\n`);
  const echo = await startEchoChild();
  const gens = await GeneratorPool.start(o.generators);
  const ctx: Context = { quick: o.quick, gens, tokens: await makeTokens(), origin: ORIGIN, log };
  // cells[scenario][row][system] = figures over rounds
  const cells = new Map<string, Figure[]>();
  const errors: string[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const scenarioName of o.scenarios) {
        const scenario = SCENARIOS[scenarioName]!;
        const order = round % 2 ? o.systems : [...o.systems].reverse();
        for (const systemName of order) {
          let system = SYSTEMS[systemName]!;
          if (scenario.appliesTo && !scenario.appliesTo(system)) continue;
          if (system.withSettings && scenario.wsguardSettings) system = system.withSettings(scenario.wsguardSettings(ctx));
          log(`round ${round}: ${scenarioName} through ${systemName}`);
          const running = await system.start(echo.port, ctx);
          try {
            const figures = await scenario.run(system, running, ctx);
            figures.forEach((f, i) => {
              const key = `${scenario.rows[i]}\u0000${systemName}`;
              cells.set(key, [...(cells.get(key) ?? []), f]);
            });
          } catch (err) {
            errors.push(`${scenarioName} through ${systemName}: ${(err as Error).message}`);
            log(`  failed: ${(err as Error).message}`);
          } finally {
            await running.stop();
          }
        }
      }
    }
  } finally {
    await gens.stop();
    echo.child.kill('SIGKILL');
  }

  const header = ['scenario', ...o.systems];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  const missing: string[] = [];
  for (const scenarioName of o.scenarios) {
    const scenario = SCENARIOS[scenarioName]!;
    for (const row of scenario.rows) {
      const value = (sys: string) => {
        const fs = cells.get(`${row}\u0000${sys}`)?.filter((f) => f.value !== null);
        return fs?.length
          ? medianRound(
              fs.map((f) => f.value!),
              scenario.lowerIsBetter === true,
            )
          : null;
      };
      const cellsOut = o.systems.map((sys) => {
        const system = SYSTEMS[sys]!;
        if (scenario.appliesTo && !scenario.appliesTo(system)) return 'n/a';
        const fs = cells.get(`${row}\u0000${sys}`) ?? [];
        const v = value(sys);
        if (v === null) {
          missing.push(`${row} / ${sys}`);
          return 'NO FIGURE';
        }
        // The round whose value is the median shows its text.
        const shown = fs.find((f) => f.value === v)!;
        const ratios: string[] = [];
        for (const base of ['direct', 'nginx']) {
          const b = value(base);
          if (base !== sys && b !== null && b > 0 && o.systems.includes(base)) ratios.push(`${(v / b).toFixed(2)}× ${base}`);
        }
        const flag = fs.some((f) => f.generatorBound) ? ' ⚠ generator-bound' : '';
        return `${shown.text}${ratios.length ? ` (${ratios.join(', ')})` : ''}${flag}`;
      });
      lines.push(`| ${row}${scenario.lowerIsBetter ? ' ↓' : ''} | ${cellsOut.join(' | ')} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(
    `\n${o.quick ? 'QUICK run (smoke: figures are not to be quoted)' : `${o.rounds} rounds, median${o.rounds % 2 ? '' : ' (of the two middle rounds, the worse)'}`}; ↓ lower is better; ` +
      `generators: ${o.generators} processes; wsguard: compiled dist/; load average at the end: ${(await import('node:os'))
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
  );
  if (errors.length) process.stderr.write(`errors:\n  ${errors.join('\n  ')}\n`);
  if (missing.length) {
    process.stderr.write(`compare: no figure for ${missing.length} cell(s):\n  ${missing.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`compare: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
