import { createHash, randomUUID } from 'node:crypto';
import { CliError } from './cli-error.ts';
import type { RunResult } from './engine/result.ts';

/** Flags that differ between the shards of one run, or that must not feed a hash (secrets). */
const NOT_IDENTITY =
  /^(shard|json|ndjson|quiet|progress-interval|run-id|metrics-port|metrics-host|otlp-endpoint|otlp-interval|\$0|_)$|secret|token|key-file|header|[A-Z]/;

/**
 * The run id of a result. `--run-id` wins; a shard derives it from its command line minus
 * `--shard` and the output flags, so the shards of one run started with the same flags agree
 * without coordination; a whole run gets a random one.
 */
export function runIdFromArgs(argv: Record<string, unknown>, sharded: boolean): string {
  if (typeof argv['run-id'] === 'string' && argv['run-id'] !== '') return argv['run-id'];
  if (!sharded) return randomUUID();
  const identity = Object.entries(argv)
    .filter(([k]) => !NOT_IDENTITY.test(k))
    .sort(([a], [b]) => a.localeCompare(b));
  return `sharded-${createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
}

/**
 * Refuses (exit 3) to merge results that are not the shards of one run: another target or kind,
 * another run id, the same shard twice, or shards of different splits.
 */
export function checkOneRun(files: string[], results: RunResult[]): void {
  if (results.length < 2) return;
  const first = results[0]!;
  const describe = (i: number): string => {
    const r = results[i]!;
    return `${files[i]} (${r.kind} of ${r.target}, run ${r.runId ?? 'without id'}${r.shard ? `, shard ${r.shard.index}/${r.shard.count}` : ''})`;
  };
  const seen = new Map<string, number>();
  results.forEach((r, i) => {
    const other =
      r.kind !== first.kind || r.target !== first.target || (r.runId !== undefined && first.runId !== undefined && r.runId !== first.runId);
    if (other) throw new CliError('usage', `${describe(i)} is not from the same run as ${describe(0)}: merge only the shards of one run`);
    if (!r.shard) throw new CliError('usage', `${describe(i)} is a whole run, not a shard: report it on its own`);
    if (r.shard.count !== first.shard?.count) throw new CliError('usage', `${describe(i)} and ${describe(0)} split the run differently`);
    const key = `${r.shard.index}`;
    if (seen.has(key)) throw new CliError('usage', `${describe(i)} and ${describe(seen.get(key)!)} are the same shard`);
    seen.set(key, i);
  });
}
