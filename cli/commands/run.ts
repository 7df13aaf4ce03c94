import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../cli-error.ts';
import { parseDurationSec, sourceIpsFromArgs, withAuthOptions, type AuthArgs } from '../common-options.ts';
import { peakConnections, type Stage } from '../engine/load-models/index.ts';
import { parseStages, runAndReport, targetOptionsFromArgs, thresholdsFromArgs, withRunOptions, type RunArgs } from '../load-options.ts';
import { runCommand } from '../run-command.ts';
import { loadScenario } from '../scenario/load.ts';
import { runScenario, SCENARIO_DEFAULTS, type ScenarioOptions } from '../scenario/runner.ts';
import { durationMs } from '../scenario/schema.ts';

interface RunCmdArgs extends AuthArgs, RunArgs {
  scenario: string;
  url?: string;
  duration?: string;
  connections?: number;
  arrivalRate?: number;
  stages?: string;
  connectRate?: number;
  handshakeTimeout: number;
}

function builder(y: Argv) {
  return withRunOptions(withAuthOptions(y))
    .positional('scenario', { type: 'string', demandOption: true, description: 'Scenario file (YAML), see docs/cli.md "Scenarios"' })
    .option('url', { type: 'string', description: "Target ws:// or wss:// URL (overrides the file's url)", group: 'Load:' })
    .option('duration', {
      alias: 'd',
      type: 'string',
      description: 'Run time (hard limit; overrides load.duration, default 30s)',
      group: 'Load:',
    })
    .option('connections', {
      alias: 'c',
      type: 'number',
      description: 'Fixed model: this many virtual users (overrides load:)',
      group: 'Load:',
    })
    .option('arrival-rate', { type: 'number', description: 'Open model: new virtual users per second (overrides load:)', group: 'Load:' })
    .option('stages', { type: 'string', description: "Ramp model: 'duration:target,…' (overrides load:)", group: 'Load:' })
    .option('connect-rate', { type: 'number', description: 'New virtual users/s while opening (fixed and ramp models)', group: 'Load:' })
    .option('handshake-timeout', {
      type: 'number',
      default: SCENARIO_DEFAULTS.handshakeTimeoutMs,
      description: 'Handshake deadline (ms) for connect steps without a timeout',
      group: 'Load:',
    })
    .example('$0 run docs/examples/chat.yaml --url ws://127.0.0.1:8080/ws/room/', "the reference guide's chat flow against the demo")
    .example("$0 run chat.yaml -c 50 --threshold 'checks.joined>0.99' --json out.json", '50 users; fail unless 99% of joins were welcomed')
    .epilogue(
      'Exit codes: 0 passed, 1 threshold or check threshold failed, 2 invalid run, 3 usage/config error (every scenario problem listed with its line).',
    );
}

export function scenarioOptionsFromArgs(a: RunCmdArgs): ScenarioOptions {
  const loaded = loadScenario(a.scenario);
  const sc = loaded.scenario;
  const url = a.url ?? sc.url;
  if (url === undefined) throw new CliError('usage', `${a.scenario}: no target URL (give url: in the file or --url)`);
  const load = sc.load ?? { connections: 1 };
  const fromFlags = a.connections !== undefined || a.arrivalRate !== undefined || a.stages !== undefined;
  const stages: Stage[] | undefined = fromFlags
    ? a.stages === undefined
      ? undefined
      : parseStages(a.stages)
    : load.stages?.map((s) => ({ durationSec: durationMs(s.duration) / 1000, target: s.target }));
  const durationSec =
    a.duration !== undefined
      ? parseDurationSec(a.duration, 'duration')
      : load.duration !== undefined
        ? durationMs(load.duration) / 1000
        : stages
          ? stages.reduce((t, s) => t + s.durationSec, 0)
          : 30;
  const target = targetOptionsFromArgs(a);
  const opts: ScenarioOptions = {
    ...target,
    url,
    durationSec,
    connections: fromFlags ? a.connections : (load.connections ?? (load.arrivalRate === undefined && !stages ? 1 : undefined)),
    arrivalRate: fromFlags ? a.arrivalRate : load.arrivalRate,
    stages,
    connectRate: a.connectRate ?? load.connectRate,
    handshakeTimeoutMs: a.handshakeTimeout,
    closeGraceMs: SCENARIO_DEFAULTS.closeGraceMs,
    gracefulStopMs: load.gracefulStop === undefined ? SCENARIO_DEFAULTS.gracefulStopMs : durationMs(load.gracefulStop),
    loaded,
  };
  opts.sourceIps = sourceIpsFromArgs(a.sourceIp, url, peakConnections(opts));
  return opts;
}

async function handler(a: RunCmdArgs): Promise<number> {
  if (a.shard !== undefined)
    throw new CliError('usage', '--shard is not supported by run yet: a fanout needs its sender and receivers in one process');
  if (a.killErrorRate !== undefined)
    throw new CliError('usage', '--kill-error-rate is not supported by run yet (use thresholds on checks)');
  const opts = scenarioOptionsFromArgs(a);
  // The file's thresholds and the command line's are judged together.
  const fileThresholds = opts.loaded.thresholds.map((t) => t.expr);
  const args = { ...a, threshold: [...(a.threshold ?? []), ...fileThresholds] };
  thresholdsFromArgs(args);
  const requested = {
    connections: opts.connections,
    arrivalRate: opts.arrivalRate,
    stages: a.stages ?? opts.stages?.map((s) => `${s.durationSec}s:${s.target}`).join(','),
    durationSec: opts.durationSec,
  };
  return runAndReport(args, requested, (hooks) => runScenario(opts, hooks));
}

export const runScenarioCommand: CommandModule<object, RunCmdArgs> = {
  command: 'run <scenario>',
  describe: 'Run a scenario: virtual users connect, send, expect, sleep, loop; named checks; fan-out latency',
  builder: builder as unknown as CommandModule<object, RunCmdArgs>['builder'],
  handler: runCommand(handler),
};
