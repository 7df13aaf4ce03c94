import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { tlsFileProblems } from '../gateway/tls.ts';

/** A configuration mistake: every problem at once, each naming the option (e.g. `limits.concurrent.max`). */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], source: string) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Tree = Record<string, unknown>;

const ENV_PREFIX = 'WSGUARD_';

/** WSGUARD_LIMITS__CONCURRENT__MAX=8 → limits.concurrent.max (segments in UPPER_SNAKE → camelCase). */
export function envOverrides(env: NodeJS.ProcessEnv): Array<[path: string, value: string, name: string]> {
  const out: Array<[string, string, string]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()))
      .join('.');
    out.push([path, value, name]);
  }
  return out;
}

// ------------------------------------------------------------------ the schema, walked by option path

type AnySchema = {
  _zod: { def: { type: string; innerType?: AnySchema; in?: AnySchema; element?: AnySchema; valueType?: AnySchema } };
  shape?: Record<string, AnySchema>;
};

/** Strips defaults, optionals and the like down to the schema that says what the value is. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def;
    if (def.innerType && ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(def.type)) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

/** The schema of the option at `path` (`limits.concurrent.max`, `routes.0.path`), or null if there is none. */
function schemaAt(path: readonly string[]): AnySchema | null {
  let s: AnySchema | null = unwrap(configSchema as unknown as AnySchema);
  for (const key of path) {
    if (!s) return null;
    const def = s._zod.def;
    if (def.type === 'object') s = s.shape?.[key] ? unwrap(s.shape[key]!) : null;
    else if (def.type === 'array' && def.element && /^\d+$/.test(key)) s = unwrap(def.element);
    else if (def.type === 'record' && def.valueType) s = unwrap(def.valueType);
    else return null;
  }
  return s;
}

/** Known option names beside an unknown one, for "did you mean". */
function knownKeysAt(path: readonly string[]): string[] {
  const s = schemaAt(path);
  return s?._zod.def.type === 'object' ? Object.keys(s.shape ?? {}) : [];
}

/** Edits between two names, a swap of neighbours counting as one (optimal string alignment): `prot` → `port` is 1. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known option to a misspelt one (at most a third of its letters off), if any. */
export function didYouMean(unknown: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(unknown.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(unknown.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * A scalar from an env var or a --set flag: JSON when it parses (numbers, booleans, arrays), else
 * the string. An option whose schema is a string keeps the text as it is, so an all-digit secret or
 * `server.host=0` stays a string rather than becoming a number that then fails validation.
 */
function parseScalar(value: string, path?: string): unknown {
  if (path !== undefined && schemaAt(path.split('.'))?._zod.def.type === 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    // Not JSON: a plain string such as a URL or a secret is meant literally.
    return value;
  }
}

function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const [i, key] of keys.slice(0, -1).entries()) {
    const next = node[key];
    // `routes.0.allowAnonymous` walks into an array by index; anything else becomes a mapping.
    const wantsArray = /^\d+$/.test(keys[i + 1]!);
    if (typeof next !== 'object' || next === null || Array.isArray(next) !== wantsArray) node[key] = wantsArray ? [] : {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

function readFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read ${file}: ${(err as Error).message}`], file);
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`cannot parse ${file}: ${(err as Error).message}`], file);
  }
  if (parsed == null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(['the file must hold a mapping of options'], file);
  return parsed as Tree;
}

/** Where a value came from, by option path: the WSGUARD_* variable that set it (file and flag values are named by path alone). */
type Provenance = Map<string, string>;

/**
 * The env var behind `path`, as a message prefix: one that set this option, an option above it
 * (a value error deep inside what it set), or one below it (an unknown option it created).
 */
function origin(provenance: Provenance, path: string): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const from = provenance.get(p);
    if (from) return `${from}: `;
  }
  for (const [p, from] of provenance) if (p.startsWith(`${path}.`)) return `${from}: `;
  return '';
}

function formatIssues(issues: z.core.$ZodIssue[], provenance: Provenance = new Map()): string[] {
  return issues.flatMap((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const parent = issue.path.map(String);
      const known = knownKeysAt(parent);
      return issue.keys.map((key) => {
        const full = [...parent, key].join('.');
        const hint = didYouMean(key, known);
        const suggestion = hint ? `; did you mean ${[...parent, hint].join('.')}?` : '';
        return `${origin(provenance, full)}unknown option ${full}${suggestion}`;
      });
    }
    return [`${origin(provenance, where)}${where}: ${issue.message}`];
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Validates a raw tree once and freezes the result. */
export function parseConfig(raw: unknown, source = 'config', provenance?: Provenance): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, provenance), source);
  const config = result.data;
  // TLS files are read here so that `config check` and `serve` name a missing or bad file's option.
  const problems = [...crossChecks(config), ...tlsFileProblems(config)];
  if (problems.length) throw new ConfigError(problems, source);
  return deepFreeze(config);
}

/** Rules that span options, reported with the same naming as the schema's own. */
function crossChecks(config: Config): string[] {
  const problems: string[] = [];
  const { auth } = config;
  const hasKeys = Boolean(auth.secret) || auth.publicKeys.length > 0 || Boolean(auth.jwksUrl);
  const needsAuth = config.routes.some((r) => !r.allowAnonymous);
  if (needsAuth && !hasKeys) {
    problems.push('auth: a route requires tokens, so set auth.secret, auth.publicKeys or auth.jwksUrl (or allowAnonymous on the route)');
  }
  const algs = auth.algorithms ?? [];
  if (auth.secret && algs.length && !algs.some((a) => a.startsWith('HS'))) {
    problems.push('auth.algorithms: auth.secret is set but no HS algorithm is allowed');
  }
  // Routes match on segment boundaries, so /ws and /ws/ are the same route.
  const seen = new Set<string>();
  config.routes.forEach((r, i) => {
    const key = r.path.length > 1 ? r.path.replace(/\/$/, '') : r.path;
    if (seen.has(key)) problems.push(`routes.${i}.path: ${r.path} is listed twice (a trailing slash does not make another route)`);
    seen.add(key);
  });
  const claimHeaders = new Set(Object.keys(auth.claimHeaders).map((h) => h.toLowerCase()));
  config.upstream.forwardHeaders.forEach((h, i) => {
    if (claimHeaders.has(h.toLowerCase())) {
      problems.push(
        `upstream.forwardHeaders.${i}: ${h} is set from a verified claim (auth.claimHeaders); forwarding the client's copy would let it forge the claim`,
      );
    }
  });
  if (config.server.handshakeTimeoutMs < config.upstream.dialTimeoutMs) {
    problems.push(
      `server.handshakeTimeoutMs: ${config.server.handshakeTimeoutMs} is below upstream.dialTimeoutMs (${config.upstream.dialTimeoutMs}); the handshake deadline would always cut the dial short, so upstream.dialTimeoutMs could never apply`,
    );
  }
  if (config.backpressure.maxBufferedBytes < config.backpressure.highWaterBytes) {
    problems.push('backpressure.maxBufferedBytes: must be at least backpressure.highWaterBytes');
  }
  return problems;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** `--set a.b=c` pairs and named flags, applied last. */
  overrides?: Array<[string, unknown]>;
}

/** File, then WSGUARD_* env vars, then flags; validated once. */
export function loadConfig(options: LoadOptions = {}): Config {
  const tree: Tree = options.file ? readFile(options.file) : {};
  const provenance: Provenance = new Map();
  for (const [path, value, name] of envOverrides(options.env ?? {})) {
    setPath(tree, path, parseScalar(value, path));
    provenance.set(path, name);
  }
  for (const [path, value] of options.overrides ?? []) {
    setPath(tree, path, typeof value === 'string' ? parseScalar(value, path) : value);
    provenance.delete(path);
  }
  const source = [options.file, options.env && 'env', options.overrides?.length && 'flags'].filter(Boolean).join(' + ') || 'defaults';
  return parseConfig(tree, source, provenance);
}
