import { CliError } from '../cli-error.ts';
import type { BackoffPolicy, Jitter } from '../../src/client/backoff.ts';

// The policies themselves live with wsguard/client so that the storm and the client share them.
export { delayBounds, nextDelay, withHint, type BackoffPolicy, type Jitter } from '../../src/client/backoff.ts';

/** `immediate`, `fixed:500`, `exp:100:30000:full` (base ms, cap ms, jitter). */
export function parsePolicy(s: string): BackoffPolicy {
  const parts = s.split(':');
  const num = (v: string | undefined, what: string): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new CliError('usage', `--policy ${s}: ${what} must be a number of ms >= 0`);
    return n;
  };
  switch (parts[0]) {
    case 'immediate':
      return { kind: 'immediate' };
    case 'fixed':
      return { kind: 'fixed', delayMs: num(parts[1], 'delay') };
    case 'exp':
    case 'exponential': {
      const jitter = (parts[3] ?? 'full') as Jitter;
      if (!['none', 'full', 'equal', 'decorrelated'].includes(jitter))
        throw new CliError('usage', `--policy ${s}: jitter must be none, full, equal or decorrelated`);
      const baseMs = num(parts[1] ?? '100', 'base');
      const capMs = num(parts[2] ?? '30000', 'cap');
      if (baseMs <= 0 || capMs < baseMs) throw new CliError('usage', `--policy ${s}: need 0 < base <= cap`);
      return { kind: 'exponential', baseMs, capMs, jitter };
    }
    default:
      throw new CliError('usage', `--policy ${s}: expected immediate, fixed:<ms> or exp:<base>:<cap>:<none|full|equal|decorrelated>`);
  }
}

export function describePolicy(p: BackoffPolicy): string {
  return p.kind === 'immediate'
    ? 'immediate'
    : p.kind === 'fixed'
      ? `fixed ${p.delayMs} ms`
      : `exponential base ${p.baseMs} ms cap ${p.capMs} ms, ${p.jitter} jitter`;
}
