import type { Argv, CommandModule } from 'yargs';
import { sourceIpsFromArgs, parseDurationSec, parseShard, withAuthOptions, type AuthArgs } from '../common-options.ts';
import { parsePolicy } from '../engine/backoff.ts';
import { runStorm, STORM_DEFAULTS, type StormOptions } from '../engine/storm.ts';
import { runAndReport, targetOptionsFromArgs, thresholdsFromArgs, withRunOptions, type RunArgs } from '../load-options.ts';
import { CliError } from '../cli-error.ts';
import { runCommand } from '../run-command.ts';
import { splitShare } from '../engine/shard.ts';

export interface StormArgs extends AuthArgs, RunArgs {
  url: string;
  connections: number;
  duration: string;
  dropAt: string;
  dropAfterHeld: boolean;
  dropPercent: number;
  dropMode: 'reset' | 'close' | 'server';
  policy: string;
  maxAttempts: number;
  honourRetryAfter: boolean;
  connectRate: number;
  settle: number;
  handshakeTimeout: number;
}

function builder(y: Argv) {
  return withRunOptions(withAuthOptions(y))
    .positional('url', { type: 'string', demandOption: true, description: 'Target ws:// or wss:// URL' })
    .option('connections', { alias: 'c', type: 'number', default: 100, description: 'Connections to hold', group: 'Storm:' })
    .option('duration', { alias: 'd', type: 'string', default: '30s', description: 'Run time (hard limit)', group: 'Storm:' })
    .option('drop-at', { type: 'string', default: '5s', description: 'When to drop', group: 'Storm:' })
    .option('drop-after-held', {
      type: 'boolean',
      default: false,
      description: 'Drop at --drop-at or once all connections are open, whichever is later',
      group: 'Storm:',
    })
    .option('drop-percent', {
      type: 'number',
      default: STORM_DEFAULTS.dropPercent,
      description: 'Share of open connections to drop (0..100)',
      group: 'Storm:',
    })
    .option('drop-mode', {
      choices: ['reset', 'close', 'server'] as const,
      default: STORM_DEFAULTS.dropMode,
      description: 'reset: TCP RST; close: clean close; server: wait for the server to close (restart, drain)',
      group: 'Storm:',
    })
    .option('policy', {
      type: 'string',
      default: 'exp:100:30000:full',
      description: 'immediate | fixed:<ms> | exp:<base>:<cap>:<none|full|equal|decorrelated>',
      group: 'Reconnect:',
    })
    .option('max-attempts', {
      type: 'number',
      default: STORM_DEFAULTS.maxAttempts,
      description: 'Attempts per client before giving up (0: unlimited)',
      group: 'Reconnect:',
    })
    .option('honour-retry-after', {
      type: 'boolean',
      default: false,
      description: 'Wait at least Retry-After, or retry_ms of a 4100–4199/1013 close',
      group: 'Reconnect:',
    })
    .option('connect-rate', {
      type: 'number',
      default: STORM_DEFAULTS.connectRate,
      description: 'New connections/s while opening the initial set',
      group: 'Storm:',
    })
    .option('settle', {
      type: 'number',
      default: STORM_DEFAULTS.settleMs,
      description: 'A reconnect must stay open this long (ms) to count as recovered',
      group: 'Reconnect:',
    })
    .option('handshake-timeout', {
      type: 'number',
      default: STORM_DEFAULTS.handshakeTimeoutMs,
      description: 'Handshake deadline (ms)',
      group: 'Storm:',
    })
    .example(
      '$0 storm ws://127.0.0.1:8080/ws -c 1000 --drop-at 5s -d 40s',
      'drop every connection with a TCP reset at 5 s; reconnect with full-jitter backoff',
    )
    .example(
      "$0 storm ws://127.0.0.1:8080/ws -c 500 --drop-percent 50 --policy immediate --threshold 'time_to_99pct_ms<5000'",
      'half reconnect at once: is the server back within 5 s?',
    )
    .example(
      '$0 storm ws://127.0.0.1:8080/ws -c 200 --drop-mode server --policy exp:200:10000:decorrelated --honour-retry-after',
      'restart the server yourself at 5 s and watch the clients return',
    )
    .epilogue('Exit codes: 0 passed, 1 threshold failed, 2 invalid run, 3 usage/config error.');
}

/**
 * The storm's options from its flags; a `--shard i/n` share is split exactly as a flood's
 * (splitShare: connections, connect rate, interleaved users, rotated source addresses).
 */
export function stormOptionsFromArgs(a: StormArgs): StormOptions {
  const base: StormOptions = {
    ...STORM_DEFAULTS,
    url: a.url,
    connections: a.connections,
    durationSec: parseDurationSec(a.duration, 'duration'),
    dropAtSec: parseDurationSec(a.dropAt, 'drop-at'),
    dropPercent: a.dropPercent,
    dropAfterHeld: a.dropAfterHeld,
    dropMode: a.dropMode,
    policy: parsePolicy(a.policy),
    maxAttempts: a.maxAttempts,
    honourRetryAfter: a.honourRetryAfter,
    connectRate: a.connectRate,
    settleMs: a.settle,
    handshakeTimeoutMs: a.handshakeTimeout,
    ...targetOptionsFromArgs(a),
    sourceIps: sourceIpsFromArgs(a.sourceIp, a.url, a.connections),
  };
  const shard = parseShard(a.shard);
  return shard ? splitShare(base, shard.index - 1, shard.count) : base;
}

async function handler(a: StormArgs): Promise<number> {
  // A storm provokes failures on purpose; an error-rate kill switch would stop it at its point.
  if (a.killErrorRate !== undefined) throw new CliError('usage', '--kill-error-rate is a flood option; storm has no kill switch');
  thresholdsFromArgs(a);
  const opts = stormOptionsFromArgs(a);
  const requested = {
    connections: a.connections,
    durationSec: opts.durationSec,
    drop: `${a.dropPercent}% ${a.dropMode} at ${a.dropAt}${a.dropAfterHeld ? ' (after all held)' : ''}, policy ${a.policy}`,
  };
  return runAndReport(a, requested, (hooks) => runStorm(opts, hooks));
}

export const stormCommand: CommandModule<object, StormArgs> = {
  command: 'storm <url>',
  describe: 'Hold N connections, drop a share at once, and measure how the clients reconnect',
  builder: builder as unknown as CommandModule<object, StormArgs>['builder'],
  handler: runCommand(handler),
};
