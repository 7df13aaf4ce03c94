/**
 * Side-by-side micro-benchmark of the two upstream client legs (src/relay/upstream-types.ts):
 * N connections to one uWS echo server on loopback, each keeping a window of messages in flight,
 * so the figure is round-trip throughput, not latency. Rounds alternate between the legs (ws,
 * lean, ws, lean, ...) so that drift in machine load hits both alike.
 *
 *   npx tsx bench/upstream-leg.ts [--seconds 5] [--rounds 2] [--connections 50] [--window 100]
 *                                 [--bytes 64] [--variants ws,lean] [--mode leg|relay] [--text 1]
 *
 * Variants: ws (dialWsUpstream), lean (the default lean dialer). The echo server runs in a child
 * process so that the server's work is not charged to the leg under test.
 *
 * --mode leg (default): this process drives the leg directly against the echo server.
 * --mode relay: the shape of the sidecar. This process runs a minimal uWS front that relays each
 * client over the leg under test (client messages sent from uWS callbacks, upstream messages
 * delivered inside ws.cork); a load-generator child drives the front. It is no gateway (no
 * policies, no backpressure handling), only the two hops whose cost the leg decides.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { startEchoChild } from './lib/echo-server.ts';
import { fileURLToPath } from 'node:url';
import { dialLeanUpstream } from '../src/relay/lean/dial.ts';
import type { UpstreamConnection, UpstreamDialer } from '../src/relay/upstream-types.ts';
import { dialWsUpstream } from '../src/relay/ws-upstream.ts';

interface Settings {
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  connections: number;
  window: number;
  bytes: number;
  variants: string[];
  maxMessagesPerRound: number;
  mode: 'leg' | 'relay';
  /** Send text frames instead of binary (leg mode), so that UTF-8 validation of upstream text is measured. */
  text: boolean;
}

function parseArgs(argv: string[]): Settings {
  const settings: Settings = {
    seconds: 5,
    warmupSeconds: 1,
    rounds: 2,
    connections: 50,
    window: 100,
    bytes: 64,
    variants: ['ws', 'lean'],
    maxMessagesPerRound: 50_000_000,
    mode: 'leg',
    text: false,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!.replace(/^--/, '');
    const value = argv[i + 1] ?? '';
    if (name === 'variants') settings.variants = value.split(',');
    else if (name === 'seconds') settings.seconds = Number(value);
    else if (name === 'warmup') settings.warmupSeconds = Number(value);
    else if (name === 'rounds') settings.rounds = Number(value);
    else if (name === 'connections') settings.connections = Number(value);
    else if (name === 'window') settings.window = Number(value);
    else if (name === 'bytes') settings.bytes = Number(value);
    else if (name === 'mode') settings.mode = value === 'relay' ? 'relay' : 'leg';
    else if (name === 'text') settings.text = value === 'true' || value === '1';
    else throw new Error(`unknown option --${name}`);
  }
  return settings;
}

const DIALERS: Record<string, UpstreamDialer> = {
  ws: dialWsUpstream,
  lean: dialLeanUpstream,
};

// ── relay mode: a minimal uWS front (this process) and a load generator (child) ─────────────

interface FrontState {
  conn: UpstreamConnection | null;
  early: Buffer[];
  closed: boolean;
}

async function startFront(dialer: UpstreamDialer, upstreamPort: number): Promise<{ port: number; close(): void }> {
  const { listen, uws } = await import('../src/gateway/uws.ts');
  const states = new Map<unknown, FrontState>();
  const app = uws.App().ws('/*', {
    maxPayloadLength: 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    open: (ws) => {
      const state: FrontState = { conn: null, early: [], closed: false };
      states.set(ws, state);
      dialer(
        { url: new URL(`ws://127.0.0.1:${upstreamPort}/`), headers: {}, protocols: [], timeoutMs: 5000, maxPayloadBytes: 1024 * 1024 },
        {
          // One cork per upstream read: the gateway's contract use of batch().
          batch: (deliver) => (state.closed ? deliver() : ws.cork(deliver)),
          onMessage: (data, isBinary) => {
            if (!state.closed) ws.send(data, isBinary);
          },
          onClose: () => {
            if (!state.closed) ws.end(1000);
          },
          onDrain: () => undefined,
        },
      ).then(
        (conn) => {
          if (state.closed) return conn.close(1000, '');
          state.conn = conn;
          for (const message of state.early) conn.send(message, true);
          state.early = [];
        },
        (err: unknown) => {
          console.error(`front: upstream dial failed: ${String(err)}`);
          if (!state.closed) ws.end(1011);
        },
      );
    },
    message: (ws, message, isBinary) => {
      const state = states.get(ws)!;
      if (state.conn) state.conn.send(message, isBinary);
      else state.early.push(Buffer.from(message));
    },
    close: (ws) => {
      const state = states.get(ws)!;
      state.closed = true;
      states.delete(ws);
      state.conn?.close(1000, '');
    },
  });
  const { socket, port } = await listen(app, '127.0.0.1', 0);
  return { port, close: () => uws.us_listen_socket_close(socket) };
}

function startLoadChild(): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--loadgen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function runLoadChild(): void {
  process.on('message', (message) => {
    const { port, settings } = message as { port: number; settings: Settings };
    runRound('lean', port, settings).then(
      (result) => process.send?.(result),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

async function runRelayRound(variant: string, upstreamPort: number, load: ChildProcess, settings: Settings): Promise<RoundResult> {
  const dialer = DIALERS[variant];
  if (!dialer) throw new Error(`unknown variant ${variant}`);
  const front = await startFront(dialer, upstreamPort);
  try {
    const result = await new Promise<RoundResult | { error: string }>((resolve) => {
      load.once('message', (message) => resolve(message as RoundResult | { error: string }));
      load.send({ port: front.port, settings });
    });
    if ('error' in result) throw new Error(`load generator: ${result.error}`);
    return { ...result, variant };
  } finally {
    front.close();
  }
}

// ── one round ───────────────────────────────────────────────────────────────────────────────

interface RoundResult {
  variant: string;
  messagesPerSecond: number;
  messages: number;
}

async function runRound(variant: string, port: number, settings: Settings): Promise<RoundResult> {
  const dialer = DIALERS[variant];
  if (!dialer) throw new Error(`unknown variant ${variant}`);
  const payload = new Uint8Array(settings.bytes).fill(0x61);
  let received = 0;
  let sent = 0;
  let stopped = false;
  let closed = 0;
  const connections: UpstreamConnection[] = [];

  for (let i = 0; i < settings.connections; i++) {
    // Each connection's onMessage needs its own connection; it is assigned right after the dial.
    const slot: { conn: UpstreamConnection | null } = { conn: null };
    const conn = await dialer(
      {
        url: new URL(`ws://127.0.0.1:${port}/bench`),
        headers: {},
        protocols: [],
        timeoutMs: 5000,
        maxPayloadBytes: 1024 * 1024,
      },
      {
        onMessage: () => {
          received++;
          if (!stopped && received < settings.maxMessagesPerRound) {
            slot.conn!.send(payload, !settings.text);
            sent++;
          }
        },
        onClose: () => {
          closed++;
        },
        onDrain: () => undefined,
        batch: (deliver) => deliver(),
      },
    );
    slot.conn = conn;
    connections.push(conn);
  }

  for (const conn of connections) {
    for (let w = 0; w < settings.window; w++) conn.send(payload, !settings.text);
  }
  sent += settings.connections * settings.window;

  await new Promise((resolve) => setTimeout(resolve, settings.warmupSeconds * 1000));
  const startCount = received;
  const started = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, settings.seconds * 1000));
  const measured = received - startCount;
  const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  stopped = true;

  // Every message sent must come back: a fast leg that loses messages would be no result at all.
  const drainDeadline = Date.now() + 5000;
  while (received < sent && Date.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 10));
  if (received !== sent) throw new Error(`${variant}: sent ${sent} messages but ${received} came back`);

  for (const conn of connections) conn.close(1000, 'bench done');
  const deadline = Date.now() + 5000;
  while (closed < connections.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  for (const conn of connections) conn.terminate();
  return { variant, messages: measured, messagesPerSecond: Math.round(measured / elapsedSeconds) };
}

// ── main ────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const { child, port } = await startEchoChild();
  const load = settings.mode === 'relay' ? startLoadChild() : null;
  const results: RoundResult[] = [];
  try {
    for (let round = 0; round < settings.rounds; round++) {
      for (const variant of settings.variants) {
        const result = load ? await runRelayRound(variant, port, load, settings) : await runRound(variant, port, settings);
        results.push(result);
        console.log(
          `round ${round + 1} ${variant.padEnd(10)} ${result.messagesPerSecond.toLocaleString('en-US').padStart(10)} msg/s round trip`,
        );
      }
    }
  } finally {
    child.disconnect();
    load?.disconnect();
  }

  const mean = (variant: string) => {
    const rows = results.filter((r) => r.variant === variant);
    return Math.round(rows.reduce((sum, r) => sum + r.messagesPerSecond, 0) / rows.length);
  };
  const summary: Record<string, unknown> = {
    bench: 'upstream-leg',
    mode: settings.mode,
    node: process.version,
    connections: settings.connections,
    window: settings.window,
    messageBytes: settings.bytes,
    secondsPerRound: settings.seconds,
    rounds: settings.rounds,
  };
  for (const variant of settings.variants) summary[`${variant}_msgs_per_s`] = mean(variant);
  if (settings.variants.includes('ws')) {
    for (const variant of settings.variants.filter((v) => v !== 'ws')) {
      const ratio = mean(variant) / mean('ws');
      summary[`ratio_${variant.replace('-', '_')}_over_ws`] = Number(ratio.toFixed(2));
      console.log(`${variant}/ws = ${ratio.toFixed(2)}x`);
    }
  }
  console.log(JSON.stringify(summary));
}

if (process.argv.includes('--loadgen')) runLoadChild();
else await main();
