/**
 * TLS benchmark: the same relay load and the same handshake loop through wsguard over ws:// and
 * over wss://, rounds alternating, in one run; then handshakes through a wss:// wsguard while its
 * certificate is rotated again and again, counting every handshake that failed.
 *
 *   npx tsx bench/tls.ts [--rounds 2] [--seconds 5] [--connections 50] [--window 100] [--bytes 64]
 *                        [--handshake-seconds 5] [--handshake-concurrency 8] [--rotations 20]
 *
 * Processes: the uWS echo upstream and wsguard (`serve`, lean leg) each in their own process, the
 * load in this one; all share the machine's cores. Certificates: P-256, made with openssl in a tmp dir.
 */
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLeanDialer, dialLeanUpstream } from '../src/relay/lean/dial.ts';
import type { UpstreamDialer } from '../src/relay/upstream-types.ts';
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { DEFAULT_LOAD, runLoad, type LoadResult, type LoadSettings } from './lib/load.ts';
import { makePair } from '../test/tls/certs.ts';

interface Settings extends LoadSettings {
  rounds: number;
  handshakeSeconds: number;
  handshakeConcurrency: number;
  rotations: number;
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = {
    rounds: 2,
    ...DEFAULT_LOAD,
    handshakeSeconds: 5,
    handshakeConcurrency: 8,
    rotations: 20,
  };
  const names: Record<string, keyof Settings> = {
    rounds: 'rounds',
    seconds: 'seconds',
    connections: 'connections',
    window: 'window',
    bytes: 'bytes',
    'handshake-seconds': 'handshakeSeconds',
    'handshake-concurrency': 'handshakeConcurrency',
    rotations: 'rotations',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]!.replace(/^--/, '')];
    if (!key) throw new Error(`unknown option ${argv[i]}`);
    s[key] = Number(argv[i + 1]);
  }
  return s;
}

/** A self-signed bench certificate is trusted by skipping verification: the handshake's cost is the same. */
const tlsDial = createLeanDialer({ tls: { rejectUnauthorized: false } });

/** Opens and closes connections from `concurrency` loops for `seconds`; counts completed handshakes and failures. */
async function handshakeLoop(
  url: string,
  dial: UpstreamDialer,
  concurrency: number,
  seconds: number,
): Promise<{ ok: number; failed: number; errors: Map<string, number>; perSecond: number }> {
  let ok = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const started = performance.now();
  const until = started + seconds * 1000;
  const loop = async () => {
    while (performance.now() < until) {
      try {
        const leg = await dial(
          { url: new URL(url), headers: {}, protocols: [], timeoutMs: 5000, maxPayloadBytes: 1 << 20 },
          { onMessage: () => {}, onClose: () => {}, onDrain: () => {}, batch: (d) => d() },
        );
        ok++;
        leg.terminate();
      } catch (err) {
        failed++;
        const m = (err as Error).message.replace(/\d+/g, 'N');
        errors.set(m, (errors.get(m) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { ok, failed, errors, perSecond: ok / ((performance.now() - started) / 1000) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const s = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-bench-tls-'));
  const served = makePair(dir, 'served', 'localhost', { days: 2 });
  const pairs = [makePair(dir, 'a', 'localhost', { days: 2 }), makePair(dir, 'b', 'localhost', { days: 2 })];
  const load0 = loadavg()[0]!;
  const echo = await startEchoChild();
  const variants = {
    plain: { settings: [] as string[], scheme: 'ws', dial: dialLeanUpstream },
    tls: { settings: [`server.tls.certFile=${served.certFile}`, `server.tls.keyFile=${served.keyFile}`], scheme: 'wss', dial: tlsDial },
  };
  const relay: Record<string, LoadResult[]> = { plain: [], tls: [] };
  const handshakes: Record<string, number[]> = { plain: [], tls: [] };
  try {
    for (let round = 1; round <= s.rounds; round++) {
      for (const [name, v] of Object.entries(variants)) {
        const gw = await startGatewayChild(echo.port, ['upstream.client=lean', ...v.settings]);
        try {
          const url = `${v.scheme}://127.0.0.1:${gw.port}/bench`;
          const r = await runLoad(url, s, v.dial);
          relay[name]!.push(r);
          const h = await handshakeLoop(url, v.dial, s.handshakeConcurrency, s.handshakeSeconds);
          if (h.failed) throw new Error(`${name}: ${h.failed} handshakes failed: ${[...h.errors].join('; ')}`);
          handshakes[name]!.push(h.perSecond);
          console.log(
            `round ${round} ${name.padEnd(5)} relay ${r.messagesPerSecond.toLocaleString('en-US').padStart(9)} msg/s  ` +
              `p50 ${r.p50Ms.toFixed(3)} ms p99 ${r.p99Ms.toFixed(3)} ms  handshakes ${h.perSecond.toFixed(0)}/s`,
          );
        } finally {
          await gw.stop();
        }
      }
    }

    // Rotation under handshake load: the files are replaced (by rename) every interval, each change reloads.
    const gw = await startGatewayChild(echo.port, ['upstream.client=lean', ...variants.tls.settings, 'server.tls.reloadDebounceMs=20']);
    const interval = (s.handshakeSeconds * 1000) / (s.rotations + 1);
    let rotated = 0;
    const rotating = (async () => {
      for (let i = 0; i < s.rotations; i++) {
        await new Promise((r) => setTimeout(r, interval));
        const p = pairs[i % 2]!;
        copyFileSync(p.keyFile, `${served.keyFile}.new`);
        copyFileSync(p.certFile, `${served.certFile}.new`);
        renameSync(`${served.keyFile}.new`, served.keyFile);
        renameSync(`${served.certFile}.new`, served.certFile);
        rotated++;
      }
    })();
    const h = await handshakeLoop(`wss://127.0.0.1:${gw.port}/bench`, tlsDial, s.handshakeConcurrency, s.handshakeSeconds);
    await rotating;
    await gw.stop();
    console.log(
      `\nrotation under load: ${rotated} certificate swaps in ${s.handshakeSeconds} s, ${h.ok} handshakes ok, ${h.failed} failed` +
        (h.failed ? ` (${[...h.errors].map(([m, n]) => `${n}× ${m}`).join('; ')})` : ''),
    );

    const m = (name: string) => ({
      msgs_per_s: Math.round(median(relay[name]!.map((r) => r.messagesPerSecond))),
      p50_ms: median(relay[name]!.map((r) => r.p50Ms)),
      p99_ms: median(relay[name]!.map((r) => r.p99Ms)),
      handshakes_per_s: Math.round(median(handshakes[name]!)),
    });
    const plain = m('plain');
    const tls = m('tls');
    console.log('\nmedian over rounds:');
    for (const [name, r] of [
      ['plain', plain],
      ['tls', tls],
    ] as const)
      console.log(
        `  ${name.padEnd(5)} ${r.msgs_per_s.toLocaleString('en-US').padStart(9)} msg/s  p50 ${r.p50_ms.toFixed(3)} ms  p99 ${r.p99_ms.toFixed(3)} ms  ${r.handshakes_per_s} handshakes/s`,
      );
    console.log(
      JSON.stringify({
        bench: 'tls',
        node: process.version,
        loadavg_1m_before: load0,
        loadavg_1m_after: loadavg()[0],
        settings: s,
        plain,
        tls,
        ratio_relay_tls_over_plain: Number((tls.msgs_per_s / plain.msgs_per_s).toFixed(3)),
        ratio_handshakes_tls_over_plain: Number((tls.handshakes_per_s / plain.handshakes_per_s).toFixed(3)),
        rotation: { swaps: rotated, ok: h.ok, failed: h.failed, errors: Object.fromEntries(h.errors) },
      }),
    );
  } finally {
    echo.child.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
