/**
 * Relay benchmark: the same load through wsguard and directly to the same upstream, in one run,
 * rounds alternating so that machine noise hits every variant alike. Prints msg/s, p50/p99 round
 * trip and each variant's ratio to direct.
 *
 *   npx tsx bench/relay.ts [--variants direct,wsguard-lean,wsguard-ws] [--rounds 2] [--seconds 5]
 *                          [--connections 50] [--window 100] [--bytes 64] [--rate 20000] [--latency-seconds 5]
 *
 * Processes: the uWS echo upstream and wsguard each run in their own process, the load generator in
 * this one. The machine has 2 cores, so through wsguard three busy processes share them.
 * Variants are rows in VARIANTS: adding a peer (nginx, another proxy) is one entry.
 */
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { DEFAULT_LOAD, runLoad, type LoadResult, type LoadSettings } from './lib/load.ts';

interface Variant {
  /** Starts what the load goes through and returns its URL and a stop function. */
  start(upstreamPort: number): Promise<{ url: string; stop(): Promise<void> }>;
}

const VARIANTS: Record<string, Variant> = {
  direct: { start: async (port) => ({ url: `ws://127.0.0.1:${port}/bench`, stop: async () => {} }) },
  'wsguard-lean': {
    start: async (port) => {
      const gw = await startGatewayChild(port, ['upstream.client=lean']);
      return { url: `ws://127.0.0.1:${gw.port}/bench`, stop: gw.stop };
    },
  },
  'wsguard-ws': {
    start: async (port) => {
      const gw = await startGatewayChild(port, ['upstream.client=ws']);
      return { url: `ws://127.0.0.1:${gw.port}/bench`, stop: gw.stop };
    },
  },
};

function parseArgs(argv: string[]): LoadSettings & { variants: string[]; rounds: number } {
  const s = {
    variants: ['direct', 'wsguard-lean', 'wsguard-ws'],
    rounds: 2,
    ...DEFAULT_LOAD,
    ratePerSecond: 20_000,
    latencySeconds: 5,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!.replace(/^--/, '');
    const value = argv[i + 1] ?? '';
    if (name === 'variants') s.variants = value.split(',');
    else if (name === 'rounds') s.rounds = Number(value);
    else if (name === 'seconds') s.seconds = Number(value);
    else if (name === 'connections') s.connections = Number(value);
    else if (name === 'window') s.window = Number(value);
    else if (name === 'bytes') s.bytes = Number(value);
    else if (name === 'rate') s.ratePerSecond = Number(value);
    else if (name === 'latency-seconds') s.latencySeconds = Number(value);
    else throw new Error(`unknown option --${name}`);
  }
  for (const v of s.variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  if (s.bytes < 8) throw new Error('--bytes must be at least 8 (the send timestamp rides in the payload)');
  return s;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const s = parseArgs(process.argv.slice(2));
  const echo = await startEchoChild();
  const results: Array<LoadResult & { variant: string }> = [];
  try {
    for (let round = 1; round <= s.rounds; round++) {
      for (const name of s.variants) {
        const target = await VARIANTS[name]!.start(echo.port);
        try {
          const r = await runLoad(target.url, s);
          results.push({ ...r, variant: name });
          console.log(
            `round ${round} ${name.padEnd(13)} ${r.messagesPerSecond.toLocaleString('en-US').padStart(9)} msg/s   ` +
              `rtt @${s.ratePerSecond}/s p50 ${r.p50Ms.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  p99.9 ${r.p999Ms.toFixed(3)} ms`,
          );
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    echo.child.disconnect();
  }
  const summary: Record<string, unknown> = {
    bench: 'relay',
    node: process.version,
    connections: s.connections,
    messageBytes: s.bytes,
    window: s.window,
    secondsPerRound: s.seconds,
    latencyRate: s.ratePerSecond,
    rounds: s.rounds,
  };
  const of = (v: string, k: keyof LoadResult) => median(results.filter((r) => r.variant === v).map((r) => r[k]));
  console.log('\nmedian over rounds:');
  for (const v of s.variants) {
    summary[v] = { msgs_per_s: of(v, 'messagesPerSecond'), p50_ms: of(v, 'p50Ms'), p99_ms: of(v, 'p99Ms') };
    const ratio = s.variants.includes('direct') && v !== 'direct' ? of(v, 'messagesPerSecond') / of('direct', 'messagesPerSecond') : null;
    if (ratio !== null) summary[`ratio_${v.replace(/-/g, '_')}_over_direct`] = Number(ratio.toFixed(3));
    console.log(
      `  ${v.padEnd(13)} ${of(v, 'messagesPerSecond').toLocaleString('en-US').padStart(9)} msg/s  p50 ${of(v, 'p50Ms').toFixed(3)} ms  p99 ${of(v, 'p99Ms').toFixed(3)} ms` +
        (ratio !== null ? `  throughput ${(ratio * 100).toFixed(1)}% of direct` : ''),
    );
  }
  console.log(JSON.stringify(summary));
}

await main();
