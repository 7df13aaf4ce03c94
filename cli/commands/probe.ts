import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../cli-error.ts';
import { authFromArgs, withAuthOptions, type AuthArgs } from '../common-options.ts';
import { createJwtMinter } from '../engine/auth.ts';
import { builtinSuite, loadSuiteFile, prepareSuite, runSuite, type ProbeReport } from '../engine/probe/suite.ts';
import type { CheckResult } from '../engine/probe/checks.ts';
import { EXIT_PASSED, EXIT_THRESHOLD_FAILED } from '../exit-codes.ts';
import { writeFileSync } from 'node:fs';
import { runCommand } from '../run-command.ts';

interface ProbeArgs extends AuthArgs {
  url?: string;
  suite?: string;
  connLimit?: number;
  msgLimit?: number;
  authRequired: boolean;
  badOrigin?: string;
  maxSize?: number;
  metricsUrl?: string;
  expectMetric?: string[];
  settle: number;
  handshakeTimeout: number;
  json?: string;
  audience?: string;
  skip?: string[];
}

function builder(y: Argv) {
  return withAuthOptions(y)
    .positional('url', { type: 'string', description: 'Target ws:// URL (or `target:` in the suite file)' })
    .option('suite', { type: 'string', description: 'YAML suite of checks (see docs/cli.md)', group: 'Checks:' })
    .option('conn-limit', {
      type: 'number',
      description: 'Per-IP connection limit: connection N+1 must get 429/4100/1013',
      group: 'Checks:',
    })
    .option('msg-limit', {
      type: 'number',
      description: 'Messages allowed per window: a burst above it must be dropped or closed (4129/1008)',
      group: 'Checks:',
    })
    .option('auth-required', {
      type: 'boolean',
      default: false,
      description: 'No token and alg=none must get 401 (expired / wrong aud too, with --jwt-*)',
      group: 'Checks:',
    })
    .option('bad-origin', { type: 'string', description: 'This Origin must get 403 (or 4003)', group: 'Checks:' })
    .option('max-size', {
      type: 'number',
      description: 'Largest allowed message (bytes): one byte more must close with 1009',
      group: 'Checks:',
    })
    .option('metrics-url', { type: 'string', description: 'Prometheus /metrics URL scraped before and after', group: 'Checks:' })
    .option('expect-metric', {
      type: 'string',
      array: true,
      description: 'Counter delta, e.g. \'wsguard_connections_rejected_total{reason="conn_limit"}>=1\'',
      group: 'Checks:',
    })
    .option('audience', {
      type: 'string',
      description: "The audience the target requires: adds the 'wrong audience → 401' check (needs --jwt-*)",
      group: 'Checks:',
    })
    .option('skip', {
      type: 'string',
      array: true,
      description: 'Skip a check by name or type, e.g. --skip auth_alg_none (repeatable)',
      group: 'Checks:',
    })
    .option('settle', {
      type: 'number',
      default: 300,
      description: 'An opened connection must stay open this long (ms) to count as admitted',
      group: 'Checks:',
    })
    .option('handshake-timeout', { type: 'number', default: 5_000, description: 'Handshake deadline (ms)' })
    .option('json', { type: 'string', description: 'Write the probe report JSON here' })
    .example(
      '$0 probe ws://127.0.0.1:8080/ws --conn-limit 5 --msg-limit 60 --bad-origin https://evil.example --max-size 65536',
      'check the generic limits',
    )
    .example(
      '$0 probe ws://127.0.0.1:8080/ws --auth-required --jwt-alg HS256 --jwt-secret s3cret --jwt-claims \'{"sub":"u{{i}}","aud":"app"}\' --audience app',
      'no / expired / wrong-aud / alg=none tokens must get 401',
    )
    .example('$0 probe --suite probe.yaml', 'run a suite file with metric expectations')
    .epilogue('Exit codes: 0 every check passed, 1 a check failed, 3 usage/config error.');
}

function line(r: CheckResult): string {
  return `${r.ok ? 'PASS' : 'FAIL'}  ${r.name}: observed ${r.observed}${r.ok ? '' : `, expected one of ${r.expected.join(' | ')}`}${r.detail ? ` (${r.detail})` : ''}`;
}

function parseMetricExpectation(s: string): { metric: string; delta: string } {
  const m = /^(.*?)(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(s);
  if (!m) throw new CliError('usage', `--expect-metric '${s}': expected selector<op><number>`);
  return { metric: m[1]!.trim(), delta: `${m[2]}${m[3]}` };
}

async function handler(a: ProbeArgs): Promise<number> {
  const file = a.suite ? loadSuiteFile(a.suite) : undefined;
  const url = a.url ?? file?.target;
  if (!url) throw new CliError('usage', 'name the target: wsguard probe <url> or `target:` in --suite');
  const auth = authFromArgs(a);
  const built =
    file?.suite ??
    builtinSuite({
      connLimit: a.connLimit,
      msgLimit: a.msgLimit,
      auth: a.authRequired,
      jwt: auth.jwt !== undefined,
      audience: a.audience,
      badOrigin: a.badOrigin,
      maxSize: a.maxSize,
    });
  const { suite, skipped } = prepareSuite(built, { jwt: auth.jwt !== undefined, skip: a.skip });
  // Sign one token now: a missing secret or key is a usage error (exit 3), like flood, not every
  // check ending in check_error.
  if (auth.jwt) await createJwtMinter(auth.jwt)(0);
  for (const c of skipped) process.stdout.write(`SKIP  ${c.name} (--skip)\n`);
  if (a.metricsUrl && a.expectMetric) {
    suite.metrics = { url: a.metricsUrl, expect: [...(suite.metrics?.expect ?? []), ...a.expectMetric.map(parseMetricExpectation)] };
  }
  const ran: ProbeReport = await runSuite(
    suite,
    { url, auth, origin: a.origin, handshakeTimeoutMs: a.handshakeTimeout, settleMs: a.settle, insecure: a.insecure },
    auth.jwt,
    (r) => process.stdout.write(`${line(r)}\n`),
  );
  const report: ProbeReport = { ...ran, skipped: skipped.length > 0 ? skipped.map((c) => c.name) : undefined };
  for (const m of report.metrics) {
    process.stdout.write(
      `${m.ok ? 'PASS' : 'FAIL'}  metric ${m.metric} moved ${m.after - m.before} (${m.before} → ${m.after}), expected ${m.delta}\n`,
    );
  }
  if (report.metricsError) process.stdout.write(`FAIL  ${report.metricsError}\n`);
  const failed = report.checks.filter((c) => !c.ok).length + report.metrics.filter((m) => !m.ok).length + (report.metricsError ? 1 : 0);
  process.stdout.write(`${report.checks.length + report.metrics.length} checks, ${failed} failed\n`);
  if (a.json) {
    try {
      writeFileSync(a.json, JSON.stringify(report, null, 2) + '\n');
    } catch (err) {
      throw new CliError('config', `--json ${a.json}: ${(err as Error).message}`, { cause: err });
    }
  }
  return report.ok ? EXIT_PASSED : EXIT_THRESHOLD_FAILED;
}

export const probeCommand: CommandModule<object, ProbeArgs> = {
  command: 'probe [url]',
  describe: "Check that the target's limits hold: connection/message limits, auth, origin, size, metrics",
  builder: builder as unknown as CommandModule<object, ProbeArgs>['builder'],
  handler: runCommand(handler),
};
