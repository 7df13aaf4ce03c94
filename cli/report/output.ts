import { writeFileSync } from 'node:fs';
import { CliError } from '../cli-error.ts';
import type { RunResult } from '../engine/result.ts';

/** Writes the result JSON (the input of `wsguard report`). */
export function writeJsonResult(path: string, r: RunResult): void {
  write(path, JSON.stringify(r, null, 2) + '\n', '--json');
}

/** One JSON object per second of the run, for log pipelines and plotting. */
export function toNdjson(r: RunResult): string {
  return r.series.map((p) => JSON.stringify({ kind: r.kind, target: r.target, ...p })).join('\n') + (r.series.length > 0 ? '\n' : '');
}

export function writeNdjson(path: string, r: RunResult): void {
  write(path, toNdjson(r), '--ndjson');
}

function write(path: string, text: string, option: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new CliError('config', `${option} ${path}: ${(err as Error).message}`, { cause: err });
  }
}
