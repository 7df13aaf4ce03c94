import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { CliError } from '../cli-error.ts';

/**
 * The one schema of a scenario file (`wsguard run scenario.yaml`). Every problem is reported at
 * once, each with the line of the YAML node it is about, so a file with three mistakes costs one
 * edit, not three runs. Durations take the CLI's forms (`500ms`, `2s`, `1m`, or a number of seconds).
 */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

export const Duration = z.union([z.number().nonnegative(), z.string().regex(DURATION, 'expected a duration like 500ms, 2s, 1m')]);
export type DurationInput = z.infer<typeof Duration>;

/** Milliseconds of a validated duration; a bare number is seconds, as on the command line. */
export function durationMs(d: DurationInput): number {
  if (typeof d === 'number') return d * 1000;
  const m = DURATION.exec(d.trim())!;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n : unit === 'm' ? n * 60_000 : unit === 'h' ? n * 3_600_000 : n * 1000;
}

/** A bare value (`- sleep: 1s`, `- close: 1000`, `- ping:`) is shorthand for the object form. */
const shorthand = <T extends z.ZodType>(toObject: (v: unknown) => unknown, schema: T) =>
  z.preprocess((v) => (v === null || v === undefined ? {} : typeof v === 'object' ? v : toObject(v)), schema);

/** The CLI's auth options (docs/cli.md "Auth"), spelled in camelCase; a connect step may override any of them. */
const AuthFields = {
  token: z.string().optional(),
  tokenIn: z.enum(['header', 'query', 'subprotocol']).optional(),
  tokenParam: z.string().min(1).optional(),
  tokenSubprotocolPrefix: z.string().optional(),
  subprotocols: z.array(z.string().min(1)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  origin: z.string().optional(),
  insecure: z.boolean().optional(),
  jwt: z
    .object({
      alg: z.enum(['HS256', 'RS256', 'ES256']),
      secret: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      /** JSON text or a mapping; `{{i}}` and `${vars}` are filled per user. */
      claims: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
      exp: z.number().int().positive().optional(),
      kid: z.string().optional(),
    })
    // The secret or key may come from --jwt-secret/--jwt-key-file instead; a missing one is found when the first token is minted.
    .strict()
    .optional(),
};
const Auth = z.object(AuthFields).strict();
export type AuthSpec = z.infer<typeof Auth>;

const Connect = shorthand(
  (v) => ({ path: v }),
  z
    .object({
      /** A full ws:// URL, or `path` relative to the scenario's url. */
      url: z.string().optional(),
      path: z.string().optional(),
      timeout: Duration.optional(),
      ...AuthFields,
    })
    .strict(),
);

const Send = shorthand(
  (v) => ({ text: v }),
  z
    .object({
      text: z.string().optional(),
      /** Any YAML value, sent as JSON; string leaves are templates. */
      json: z.unknown().optional(),
      binary: z.boolean().optional(),
      /** Pad the message with `x` to this many bytes. */
      size: z.number().int().positive().optional(),
    })
    .strict()
    .refine((s) => (s.text === undefined) !== (s.json === undefined), { message: 'give exactly one of text, json' }),
);

const validRegex = (s: string): boolean => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
};

const Expect = z
  .object({
    /** JSON-path equalities (`type: welcome`, `$.user.id: ${id}`); the message must be JSON and match all. */
    json: z.record(z.string(), z.unknown()).optional(),
    regex: z.string().refine(validRegex, { message: 'not a valid regular expression' }).optional(),
    timeout: Duration.optional(),
    /** Name of the check this expect counts into (thresholds: `checks.<name>`). */
    check: z
      .string()
      .regex(/^[A-Za-z_][\w-]*$/, 'a check name is letters, digits, _ and -')
      .optional(),
    /** Variables taken from the matched message: a JSON path, or a regex group number. */
    capture: z
      .record(
        z.string().regex(/^[A-Za-z_]\w*$/, 'a variable name is letters, digits and _'),
        z.union([z.string(), z.number().int().nonnegative()]),
      )
      .optional(),
    /** Keep going after a failed expect (default: the user stops, closing its connection). */
    continue: z.boolean().optional(),
  })
  .strict()
  .refine((e) => e.json !== undefined || e.regex !== undefined, { message: 'give json or regex (or both)' });

const Sleep = shorthand(
  (v) => ({ fixed: v }),
  z
    .object({
      fixed: Duration.optional(),
      uniform: z.tuple([Duration, Duration]).optional(),
      normal: z.object({ mean: Duration, stddev: Duration }).strict().optional(),
    })
    .strict()
    .refine((s) => [s.fixed, s.uniform, s.normal].filter((x) => x !== undefined).length === 1, {
      message: 'give exactly one of fixed, uniform: [min, max], normal: { mean, stddev }',
    }),
);

const Ping = shorthand(() => ({}), z.object({ timeout: Duration.optional(), check: Expect.shape.check }).strict());

const Close = shorthand(
  (v) => ({ code: v }),
  z
    .object({
      // 1005, 1006 and 1015 must never be sent (RFC 6455 §7.4.1); 1000 and 3000-4999 are what a client may send.
      code: z
        .number()
        .int()
        .refine((c) => c === 1000 || (c >= 3000 && c <= 4999), { message: 'a client may close with 1000 or 3000-4999' })
        .optional(),
      reason: z.string().max(123).optional(),
    })
    .strict(),
);

const Fanout = z
  .object({
    /** User index of the sender; every other user in the step is a receiver. */
    sender: z.number().int().nonnegative().optional(),
    count: z.number().int().positive(),
    /** Paced sends per second; latency counts from each message's intended send time. */
    rate: z.number().positive(),
    size: z.number().int().positive().optional(),
    /** Receivers the sender waits for before its first send (default: every other user of the run). */
    receivers: z.number().int().positive().optional(),
    /** How long receivers wait for a message after its intended send time. */
    timeout: Duration.optional(),
  })
  .strict();

/** Flood's per-connection send loop as a step: paced messages with flood's markers, echoes matched, RTT from the intended send time. */
const Flood = z
  .object({
    rate: z.number().positive(),
    count: z.number().int().positive().optional(),
    duration: Duration.optional(),
    size: z.number().int().positive().optional(),
    /** flood's --template placeholders ({{marker}}, {{counter}}, {{i}}, …). */
    template: z.string().optional(),
    binary: z.boolean().optional(),
    /** Expect echoes (RTT, lost messages); false for servers that do not echo. */
    echo: z.boolean().optional(),
    /** How long to wait for echoes after the last send. */
    drain: Duration.optional(),
  })
  .strict()
  .refine((f) => (f.count === undefined) !== (f.duration === undefined), { message: 'give exactly one of count, duration' });

export interface StepSpec {
  name?: string;
  connect?: z.infer<typeof Connect>;
  send?: z.infer<typeof Send>;
  expect?: z.infer<typeof Expect>;
  sleep?: z.infer<typeof Sleep>;
  ping?: z.infer<typeof Ping>;
  close?: z.infer<typeof Close>;
  loop?: { count: number; steps: StepSpec[] };
  fanout?: z.infer<typeof Fanout>;
  flood?: z.infer<typeof Flood>;
}

export const STEP_KINDS = ['connect', 'send', 'expect', 'sleep', 'ping', 'close', 'loop', 'fanout', 'flood'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

const Step: z.ZodType<StepSpec> = z.lazy(() =>
  z
    .object({
      name: z.string().optional(),
      connect: Connect.optional(),
      send: Send.optional(),
      expect: Expect.optional(),
      sleep: Sleep.optional(),
      ping: Ping.optional(),
      close: Close.optional(),
      loop: z
        .object({ count: z.number().int().positive(), steps: z.array(Step).min(1) })
        .strict()
        .optional(),
      fanout: Fanout.optional(),
      flood: Flood.optional(),
    })
    .strict()
    .superRefine((s, ctx) => {
      const kinds = STEP_KINDS.filter((k) => k in s);
      if (kinds.length !== 1) ctx.addIssue({ code: 'custom', message: `a step has exactly one of ${STEP_KINDS.join(', ')}` });
    }),
) as z.ZodType<StepSpec>;

const Load = z
  .object({
    connections: z.number().int().positive().optional(),
    arrivalRate: z.number().positive().optional(),
    stages: z
      .array(z.object({ duration: Duration, target: z.number().int().nonnegative() }).strict())
      .min(1)
      .optional(),
    connectRate: z.number().positive().optional(),
    /** Hard limit of the run; a fixed-users run ends sooner when every user has finished. */
    duration: Duration.optional(),
    /** After the duration, how long started users may finish their steps before they are stopped. */
    gracefulStop: Duration.optional(),
  })
  .strict()
  // None: one user, or the model the command line gives.
  .refine((l) => [l.connections, l.arrivalRate, l.stages].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of connections, arrivalRate, stages',
  });

export const ScenarioSchema = z
  .object({
    /** Target URL (the command line's --url wins). */
    url: z.string().optional(),
    /** Per-user data: CSV (header row) or JSON (array of objects); row k goes to user k, round-robin. */
    data: z.string().optional(),
    auth: Auth.optional(),
    load: Load.optional(),
    thresholds: z.array(z.string()).optional(),
    steps: z.array(Step).min(1),
  })
  .strict();

export type Scenario = z.infer<typeof ScenarioSchema>;

export interface Problem {
  path: (string | number)[];
  message: string;
  /** 1-based; 0 when the path has no node (a missing top-level key). */
  line: number;
  col: number;
}

export interface ParsedFile {
  doc: Document;
  lines: LineCounter;
}

/** Line and column of the deepest node on `path` that exists in the document (a missing key points at its parent). */
export function locate(f: ParsedFile, path: readonly (string | number)[], key?: string): { line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? f.doc.contents : f.doc.getIn(path.slice(0, n), true);
    const range = node && typeof node === 'object' && 'range' in node ? (node.range as [number, number, number] | undefined) : undefined;
    if (!range) continue;
    let at = range[0];
    // An unknown key: point at the key itself, not at the mapping that holds it.
    if (key !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (pair && isScalar(pair.key) && pair.key.range) at = pair.key.range[0];
    }
    return f.lines.linePos(at);
  }
  return { line: 0, col: 0 };
}

export function showPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top)';
}

/** The YAML text as a document, or every syntax error with its line. */
export function parseYamlFile(text: string, file: string): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const msgs = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return `${file}:${line}:${col}: ${e.message.split('\n')[0]}`;
    });
    throw new CliError('config', `${file}: ${doc.errors.length} YAML error(s)\n${msgs.join('\n')}`);
  }
  return { doc, lines };
}

/** Validates the document with the schema; every zod issue becomes a Problem with its line. */
export function schemaProblems(f: ParsedFile, value: unknown): { scenario?: Scenario; problems: Problem[] } {
  const r = ScenarioSchema.safeParse(value);
  if (r.success) return { scenario: r.data, problems: [] };
  const problems: Problem[] = [];
  for (const issue of r.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: [...path, key], message: `unknown key '${key}'`, ...locate(f, path, key) });
      continue;
    }
    problems.push({ path, message: issue.message, ...locate(f, path) });
  }
  return { problems };
}

export function formatProblems(file: string, problems: Problem[]): string {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  return `${file}: ${problems.length} problem(s)\n${sorted.map((p) => `${file}:${p.line}:${p.col}: ${showPath(p.path)}: ${p.message}`).join('\n')}`;
}
