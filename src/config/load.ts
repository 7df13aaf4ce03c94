import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

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
export function envOverrides(env: NodeJS.ProcessEnv): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()))
      .join('.');
    out.push([path, value]);
  }
  return out;
}

/** A scalar from an env var or a --set flag: JSON when it parses (numbers, booleans, arrays), else the string. */
function parseScalar(value: string): unknown {
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

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      return `${where === '(top level)' ? '' : `${where}.`}${issue.keys.join(', ')}: unknown option`;
    }
    return `${where}: ${issue.message}`;
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
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues), source);
  const config = result.data;
  const problems = crossChecks(config);
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
      problems.push(`upstream.forwardHeaders.${i}: ${h} is set from a verified claim (auth.claimHeaders); forwarding the client's copy would let it forge the claim`);
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
  for (const [path, value] of envOverrides(options.env ?? {})) setPath(tree, path, parseScalar(value));
  for (const [path, value] of options.overrides ?? []) {
    setPath(tree, path, typeof value === 'string' ? parseScalar(value) : value);
  }
  const source = [options.file, options.env && 'env', options.overrides?.length && 'flags'].filter(Boolean).join(' + ') || 'defaults';
  return parseConfig(tree, source);
}
