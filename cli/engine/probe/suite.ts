import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CliError } from '../../cli-error.ts';
import { ERROR_CODES } from '../../../src/errors.ts';
import { CLOSE } from '../../../src/relay/close-codes.ts';
import type { AuthOptions, JwtSpec } from '../auth.ts';
import { closedOutcome, outcomesOf } from '../outcomes.ts';
import type { ProbeTarget } from './attempt.ts';
import { CHECK_TYPES, runCheck, type CheckResult, type CheckSpec, type CheckType } from './checks.ts';
import { parseSelector, scrape, sumMatching } from './prometheus-text.ts';

/** Outcomes each check accepts unless the suite says otherwise: the shared close-code contract. */
export const DEFAULT_EXPECT: Readonly<Record<CheckType, string[]>> = Object.freeze({
  connect: ['opened'],
  // A limit may also be answered "try again later" by a sidecar that sheds before counting.
  conn_limit: [...outcomesOf('conn_limit'), closedOutcome(CLOSE.tryAgainLater)],
  // Dropping is the default action, closing the other; other servers close a flood as a policy violation.
  message_rate: ['dropped', closedOutcome(ERROR_CODES.message_rate.closeCode), closedOutcome(CLOSE.policyViolation)],
  auth_missing: outcomesOf('token_missing'),
  auth_expired: [...outcomesOf('token_expired'), closedOutcome(ERROR_CODES.auth.closeCode)],
  auth_wrong_aud: outcomesOf('auth'),
  auth_alg_none: outcomesOf('auth'),
  origin: outcomesOf('origin'),
  oversize: [closedOutcome(ERROR_CODES.message_too_big.closeCode)],
});

const DeltaExpr = z.string().regex(/^\s*(<=|>=|==|!=|<|>)\s*-?\d+(\.\d+)?\s*$/, 'expected e.g. ">=1" or "==0"');

const CheckSchema = z.object({
  name: z.string().optional(),
  type: z.enum(CHECK_TYPES as [CheckType, ...CheckType[]]),
  expect: z.array(z.string()).optional(),
  limit: z.number().int().positive().optional(),
  bytes: z.number().int().positive().optional(),
  burst: z.number().int().positive().optional(),
  origin: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  token: z.string().optional(),
  audience: z.string().optional(),
});

export const SuiteSchema = z.object({
  target: z.string().optional(),
  checks: z.array(CheckSchema).min(1),
  metrics: z
    .object({
      url: z.string(),
      expect: z.array(z.object({ metric: z.string(), delta: DeltaExpr })).min(1),
    })
    .optional(),
});

export type SuiteFile = z.infer<typeof SuiteSchema>;

export interface MetricExpectation {
  metric: string;
  delta: string;
}

export interface Suite {
  checks: CheckSpec[];
  metrics?: { url: string; expect: MetricExpectation[] };
}

export function loadSuiteFile(path: string): { suite: Suite; target?: string } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('config', `--suite ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = SuiteSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CliError('config', `--suite ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return {
    target: parsed.data.target,
    suite: {
      checks: parsed.data.checks.map((c, i) => ({
        ...c,
        name: c.name ?? `${c.type}#${i + 1}`,
        expect: c.expect ?? DEFAULT_EXPECT[c.type],
      })),
      metrics: parsed.data.metrics,
    },
  };
}

/** The generic suite, from flags: each limit the user names gets its check. */
export function builtinSuite(o: {
  connLimit?: number;
  msgLimit?: number;
  auth?: boolean;
  jwt?: boolean;
  audience?: string;
  badOrigin?: string;
  maxSize?: number;
}): Suite {
  const checks: CheckSpec[] = [{ name: 'a valid client connects', type: 'connect', expect: DEFAULT_EXPECT.connect }];
  const add = (name: string, type: CheckType, extra: Partial<CheckSpec> = {}): void => {
    checks.push({ name, type, expect: DEFAULT_EXPECT[type], ...extra });
  };
  if (o.connLimit !== undefined) add(`connection ${o.connLimit + 1} is refused`, 'conn_limit', { limit: o.connLimit });
  if (o.msgLimit !== undefined) add(`messages over ${o.msgLimit} are dropped or closed`, 'message_rate', { limit: o.msgLimit });
  if (o.auth) {
    add('no token → 401', 'auth_missing');
    add('alg=none token → 401', 'auth_alg_none');
    if (o.jwt) add('expired token → 401', 'auth_expired');
    // Only a target that checks an audience can refuse a wrong one: the user names it.
    if (o.jwt && o.audience !== undefined) add('wrong audience → 401', 'auth_wrong_aud', { audience: o.audience });
  }
  if (o.badOrigin !== undefined) add(`Origin ${o.badOrigin} → 403`, 'origin', { origin: o.badOrigin });
  if (o.maxSize !== undefined) add(`a ${o.maxSize + 1}-byte message → 1009`, 'oversize', { bytes: o.maxSize + 1 });
  return { checks };
}

export interface MetricResult {
  metric: string;
  delta: string;
  before: number;
  after: number;
  ok: boolean;
}

/** Checks that sign tokens: they need --jwt-alg and its key. */
export const CHECKS_NEEDING_JWT: readonly CheckType[] = ['auth_expired', 'auth_wrong_aud'];

/**
 * Refuses, before any check runs, a suite that cannot run: a check that needs a token without the
 * signing settings, or `--skip` naming no check. Returns the suite without the skipped checks.
 */
export function prepareSuite(suite: Suite, o: { jwt: boolean; skip?: string[] }): { suite: Suite; skipped: CheckSpec[] } {
  const skip = new Set(o.skip ?? []);
  for (const name of skip) {
    if (!suite.checks.some((c) => c.name === name || c.type === name)) {
      throw new CliError(
        'usage',
        `--skip ${name}: no such check; the checks are: ${suite.checks.map((c) => `'${c.name}' (${c.type})`).join(', ')}`,
      );
    }
  }
  const skipped = suite.checks.filter((c) => skip.has(c.name) || skip.has(c.type));
  const checks = suite.checks.filter((c) => !skipped.includes(c));
  if (!o.jwt) {
    const needy = checks.filter((c) => CHECKS_NEEDING_JWT.includes(c.type));
    if (needy.length > 0) {
      throw new CliError(
        'usage',
        `check ${needy.map((c) => `'${c.name}'`).join(', ')} needs a signed token: give --jwt-alg with --jwt-secret or --jwt-key-file, or --skip it`,
      );
    }
  }
  return { suite: { ...suite, checks }, skipped };
}

export interface ProbeReport {
  kind: 'probe';
  version: 1;
  /** Identifies the run; `wsguard report` reads it. */
  runId: string;
  startedAt: string;
  target: string;
  /** Checks the user skipped by name (`--skip`). */
  skipped?: string[];
  checks: CheckResult[];
  metrics: MetricResult[];
  /** Why the metric checks could not run, if they could not. */
  metricsError?: string;
  ok: boolean;
}

function deltaOk(delta: number, expr: string): boolean {
  const m = /^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expr)!;
  const t = Number(m[2]);
  switch (m[1]) {
    case '<':
      return delta < t;
    case '<=':
      return delta <= t;
    case '>':
      return delta > t;
    case '>=':
      return delta >= t;
    case '==':
      return delta === t;
    default:
      return delta !== t;
  }
}

/** Runs checks one after another: parallel checks would trip each other's limits. */
export async function runSuite(
  suite: Suite,
  target: ProbeTarget,
  jwt?: JwtSpec,
  onResult?: (r: CheckResult) => void,
): Promise<ProbeReport> {
  const ctx = { target, jwt };
  const startedAt = new Date().toISOString();
  let before: Awaited<ReturnType<typeof scrape>> | undefined;
  let metricsError: string | undefined;
  if (suite.metrics) {
    try {
      before = await scrape(suite.metrics.url);
    } catch (err) {
      metricsError = `metrics scrape before the checks failed: ${(err as Error).message}`;
    }
  }
  const checks: CheckResult[] = [];
  for (const c of suite.checks) {
    const r = await runCheck(c, ctx);
    checks.push(r);
    onResult?.(r);
  }
  const metrics: MetricResult[] = [];
  if (suite.metrics && before) {
    try {
      const after = await scrape(suite.metrics.url);
      for (const e of suite.metrics.expect) {
        const sel = parseSelector(e.metric);
        const b = sumMatching(before, sel);
        const a = sumMatching(after, sel);
        metrics.push({ metric: e.metric, delta: e.delta, before: b, after: a, ok: deltaOk(a - b, e.delta) });
      }
    } catch (err) {
      metricsError = `metrics scrape after the checks failed: ${(err as Error).message}`;
    }
  }
  const ok = checks.every((c) => c.ok) && metrics.every((m) => m.ok) && metricsError === undefined;
  return { kind: 'probe', version: 1, runId: randomUUID(), startedAt, target: target.url, checks, metrics, metricsError, ok };
}

export type { AuthOptions };
