import type { Argv, CommandModule } from 'yargs';
import { TRANSPORTS, type Transport } from '../engine/gen-socket.ts';
import { parseDurationSec, parseShard, sourceIpsFromArgs, withAuthOptions, type AuthArgs } from '../common-options.ts';
import { FLOOD_DEFAULTS, type FloodOptions } from '../engine/flood.ts';
import { peakConnections } from '../engine/load-models/index.ts';
import { resolveWorkerCount, runFloodWorkers } from '../engine/workers.ts';
import { parseStages, runAndReport, targetOptionsFromArgs, thresholdsFromArgs, withRunOptions, type RunArgs } from '../load-options.ts';
import { runCommand } from '../run-command.ts';
import { splitShare } from '../engine/shard.ts';

interface FloodArgs extends AuthArgs, RunArgs {
  url: string;
  duration: string;
  connections?: number;
  arrivalRate?: number;
  hold?: string;
  stages?: string;
  connectRate?: number;
  rate: number;
  size: number;
  template?: string;
  binary: boolean;
  echo: boolean;
  maxInflight: number;
  drain: number;
  handshakeTimeout: number;
  workers: number;
  transport: Transport;
}

function builder(y: Argv) {
  return withRunOptions(withAuthOptions(y))
    .positional('url', { type: 'string', demandOption: true, description: 'Target ws:// or wss:// URL' })
    .option('duration', { alias: 'd', type: 'string', default: '10s', description: 'Run time (hard limit), e.g. 30s, 2m', group: 'Load:' })
    .option('connections', { alias: 'c', type: 'number', description: 'Fixed model: hold this many connections', group: 'Load:' })
    .option('arrival-rate', { type: 'number', description: 'Open model: new connections per second', group: 'Load:' })
    .option('hold', { type: 'string', description: 'Open model: how long each connection stays (default: to the end)', group: 'Load:' })
    .option('stages', { type: 'string', description: "Ramp model: 'duration:target,…' e.g. 10s:100,30s:100,10s:0", group: 'Load:' })
    .option('connect-rate', { type: 'number', description: 'New connections/s while opening (fixed and ramp models)', group: 'Load:' })
    .option('rate', {
      alias: 'r',
      type: 'number',
      default: 0,
      description: 'Messages per second per connection (paced, open loop)',
      group: 'Messages:',
    })
    .option('size', { type: 'number', default: 64, description: 'Message size in bytes', group: 'Messages:' })
    .option('template', {
      type: 'string',
      description: 'Message template: {{marker}} {{counter}} {{ts}} {{i}} {{random:N}} {{pad:N}}',
      group: 'Messages:',
    })
    .option('binary', { type: 'boolean', default: false, description: 'Send binary frames', group: 'Messages:' })
    .option('echo', {
      type: 'boolean',
      default: true,
      description: 'Expect echoes (RTT, lost messages); --no-echo for other servers',
      group: 'Messages:',
    })
    .option('max-inflight', {
      type: 'number',
      default: 0,
      description: 'Per-connection window of unanswered messages (0: open loop)',
      group: 'Messages:',
    })
    .option('drain', {
      type: 'number',
      default: FLOOD_DEFAULTS.drainMs,
      description: 'Wait this long (ms) for echoes after the last send',
      group: 'Messages:',
    })
    .option('handshake-timeout', {
      type: 'number',
      default: FLOOD_DEFAULTS.handshakeTimeoutMs,
      description: 'Handshake deadline (ms)',
      group: 'Load:',
    })
    .option('workers', { type: 'number', default: 1, description: 'Worker threads (0: one per core)', group: 'Scale:' })
    .option('transport', {
      choices: TRANSPORTS,
      default: 'lean' as Transport,
      description: 'Client on the hot path: lean (RFC 6455 framing of our own, batched writes) or ws (for comparison)',
      group: 'Scale:',
    })
    .example('$0 flood ws://127.0.0.1:8080/ws -c 100 -r 10 -d 30s', '100 connections, 10 msg/s each, for 30 s')
    .example(
      "$0 flood ws://127.0.0.1:8080/ws --arrival-rate 50 --hold 5s -d 1m --threshold 'rejected.429<1'",
      'open model: 50 new connections/s, each held 5 s',
    )
    .example(
      "$0 flood ws://127.0.0.1:8080/ws --stages 10s:500,30s:500,10s:0 -r 2 --threshold 'p99_rtt_ms<50' --json out.json",
      'ramp up, hold, ramp down; fail if p99 RTT >= 50 ms',
    )
    .example(
      '$0 flood ws://127.0.0.1:8080/ws -c 40000 -r 1 --workers 0 --source-ip auto -d 1m',
      'one worker per core; loopback load spread over 127.0.0.x',
    )
    .example(
      '$0 flood ws://127.0.0.1:8080/ws -c 20 --jwt-alg HS256 --jwt-secret s3cret --jwt-claims \'{"sub":"u{{i}}","aud":"app"}\'',
      'a signed JWT per virtual user',
    )
    .epilogue(
      'Exit codes: 0 passed, 1 threshold failed (or kill switch), 2 invalid run (generator saturated, pre-flight failed), 3 usage/config error.',
    );
}

export async function floodOptionsFromArgs(a: FloodArgs): Promise<FloodOptions> {
  const durationSec = parseDurationSec(a.duration, 'duration');
  const base: FloodOptions = {
    ...FLOOD_DEFAULTS,
    url: a.url,
    durationSec,
    connections: a.connections,
    arrivalRate: a.arrivalRate,
    holdSec: a.hold === undefined ? undefined : parseDurationSec(a.hold, 'hold'),
    stages: a.stages === undefined ? undefined : parseStages(a.stages),
    connectRate: a.connectRate,
    msgRate: a.rate,
    payload: { sizeBytes: a.size, template: a.template, binary: a.binary },
    expectEcho: a.echo,
    maxInFlight: a.maxInflight,
    drainMs: a.drain,
    handshakeTimeoutMs: a.handshakeTimeout,
    transport: a.transport,
    ...targetOptionsFromArgs(a),
    killSwitch:
      a.killErrorRate === undefined ? undefined : { errorRate: a.killErrorRate, windowSec: a.killWindow, minAttempts: a.killMinEvents },
  };
  base.sourceIps = sourceIpsFromArgs(a.sourceIp, a.url, peakConnections(base));
  const shard = parseShard(a.shard);
  return shard ? splitShare(base, shard.index - 1, shard.count) : base;
}

async function handler(a: FloodArgs): Promise<number> {
  // Thresholds are parsed before the run, so a typo fails at once (exit 3) rather than after it.
  thresholdsFromArgs(a);
  const opts = await floodOptionsFromArgs(a);
  const requested = {
    connections: a.connections,
    arrivalRate: a.arrivalRate,
    stages: a.stages,
    rate: a.rate,
    sizeBytes: a.template === undefined ? a.size : undefined,
    durationSec: parseDurationSec(a.duration, 'duration'),
    workers: resolveWorkerCount(a.workers),
  };
  return runAndReport(a, requested, (hooks) => runFloodWorkers(opts, resolveWorkerCount(a.workers), hooks));
}

export const floodCommand: CommandModule<object, FloodArgs> = {
  command: 'flood <url>',
  describe: 'Open many connections and send paced messages; measure outcomes, RTT and throughput',
  builder: builder as unknown as CommandModule<object, FloodArgs>['builder'],
  handler: runCommand(handler),
};
