import { CliError } from './cli-error.ts';

/**
 * The one place every numeric flag of every command is checked, before any handler runs (a yargs
 * middleware in cli/main.ts). yargs turns `-c five` into NaN and accepts `-c -5` or `-c 0`; each of
 * those used to reach a run that tested nothing and passed. A numeric option without a rule here is
 * a test failure (test/cli/numeric-options.test.ts walks every command's options).
 */
export interface NumberRule {
  /** Smallest allowed value. */
  min?: number;
  /** `min` itself is not allowed (a rate of 0, a timeout of 0). */
  above?: boolean;
  max?: number;
  integer?: boolean;
}

const count = (min: number): NumberRule => ({ min, integer: true });
const positive: NumberRule = { min: 0, above: true };
const nonNegative: NumberRule = { min: 0 };

const PORT: NumberRule = { min: 0, max: 65535, integer: true };

/** Keyed by the flag's name as typed (kebab-case). */
export const NUMBER_RULES: Readonly<Record<string, NumberRule>> = Object.freeze({
  // flood / storm load
  connections: count(1),
  'arrival-rate': positive,
  'connect-rate': positive,
  rate: nonNegative,
  size: count(1),
  'max-inflight': count(0),
  drain: nonNegative,
  'handshake-timeout': positive,
  workers: count(0),
  // storm
  'drop-percent': { min: 0, above: true, max: 100 },
  'max-attempts': count(0),
  settle: nonNegative,
  // verdict and caps
  'max-event-loop-p99': positive,
  'max-send-lag': positive,
  'max-connections': count(1),
  'max-conn-rate': positive,
  'max-msg-rate': positive,
  'max-duration': positive,
  'kill-error-rate': { min: 0, above: true, max: 1 },
  'kill-window': positive,
  'kill-min-events': count(1),
  // auth
  'jwt-exp': count(1),
  // probe
  'conn-limit': count(1),
  'msg-limit': count(1),
  'max-size': count(1),
  // serve
  port: PORT,
  // flood, storm, run: live metrics
  'metrics-port': PORT,
});

export function describeRule(r: NumberRule): string {
  const kind = r.integer ? 'a whole number' : 'a number';
  const lower = r.min === undefined ? '' : r.above ? ` > ${r.min}` : ` >= ${r.min}`;
  const upper = r.max === undefined ? '' : `${lower ? ' and' : ''} <= ${r.max}`;
  return `${kind}${lower}${upper}`;
}

function violates(v: number, r: NumberRule): boolean {
  if (!Number.isFinite(v)) return true;
  if (r.integer && !Number.isInteger(v)) return true;
  if (r.min !== undefined && (r.above ? v <= r.min : v < r.min)) return true;
  return r.max !== undefined && v > r.max;
}

/** Throws a usage error (exit 3) naming the first numeric flag whose value breaks its rule. */
export function checkNumericOptions(argv: Record<string, unknown>): void {
  for (const [name, rule] of Object.entries(NUMBER_RULES)) {
    const raw = argv[name];
    if (raw === undefined) continue;
    for (const v of Array.isArray(raw) ? raw : [raw]) {
      if (typeof v === 'number' && !violates(v, rule)) continue;
      // yargs has already turned a word into NaN; say so rather than print "NaN".
      const shown = typeof v === 'number' && Number.isNaN(v) ? 'not a number' : String(v);
      throw new CliError('usage', `--${name} ${shown}: expected ${describeRule(rule)}`);
    }
  }
}
