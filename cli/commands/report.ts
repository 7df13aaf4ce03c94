import { readFileSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../cli-error.ts';
import type { RunResult } from '../engine/result.ts';
import { decideVerdict, evaluateThresholds, loadThresholdFile, parseThreshold } from '../engine/thresholds.ts';
import { EXIT_PASSED } from '../exit-codes.ts';
import { renderHtml } from '../report/html.ts';
import { renderMarkdown } from '../report/markdown.ts';
import { mergeResults } from '../engine/merge.ts';
import { toNdjson } from '../report/output.ts';
import { renderTerminal } from '../report/terminal.ts';
import { runCommand } from '../run-command.ts';

interface ReportArgs {
  files: string[];
  format: 'text' | 'md' | 'html' | 'json' | 'ndjson';
  out?: string;
  threshold?: string[];
  thresholdsFile?: string;
}

function load(path: string): RunResult {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('config', `${path}: ${(err as Error).message}`, { cause: err });
  }
  const r = doc as Partial<RunResult>;
  if (r.version !== 1 || (r.kind !== 'flood' && r.kind !== 'storm')) throw new CliError('config', `${path}: not a wsguard result (write one with --json)`);
  return r as RunResult;
}

async function handler(a: ReportArgs): Promise<number> {
  const results = a.files.map(load);
  let r = mergeResults(results);
  const thresholds = [...(a.threshold ?? []).map(parseThreshold), ...(a.thresholdsFile ? loadThresholdFile(a.thresholdsFile) : [])];
  // Thresholds re-evaluated on the merged result: the verdict for a sharded run as a whole.
  if (thresholds.length > 0 || results.length > 1) {
    r = { ...r, thresholds: evaluateThresholds(r, thresholds) };
    r.verdict = decideVerdict(r, r.thresholds!);
  }
  const text =
    a.format === 'html' ? renderHtml(r)
    : a.format === 'md' ? renderMarkdown(r)
    : a.format === 'json' ? JSON.stringify(r, null, 2) + '\n'
    : a.format === 'ndjson' ? toNdjson(r)
    : renderTerminal(r);
  if (a.out) writeFileSync(a.out, text);
  else process.stdout.write(text);
  return r.verdict?.exitCode ?? EXIT_PASSED;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <files..>',
  describe: 'Render saved results (text, Markdown, HTML with charts, JSON, NDJSON); merge shards',
  builder: ((y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, description: 'Result JSON files written with --json' })
      .option('format', { alias: 'f', choices: ['text', 'md', 'html', 'json', 'ndjson'] as const, default: 'text' as const, description: 'Output format' })
      .option('out', { alias: 'o', type: 'string', description: 'Write to this file instead of stdout' })
      .option('threshold', { type: 'string', array: true, description: 'Re-evaluate thresholds on the (merged) result' })
      .option('thresholds-file', { type: 'string', description: 'YAML/JSON list of threshold expressions' })
      .example('$0 report result.json', 'terminal summary')
      .example('$0 report result.json -f html -o report.html', 'self-contained HTML with charts')
      .example("$0 report shard-*.json -f md --threshold 'p99_rtt_ms<50'", 'merge shards, Markdown summary, exit 1 if the merged p99 is too high')
      .epilogue('Exit codes: 0 passed (or no thresholds), 1 threshold failed, 2 a merged shard was invalid, 3 usage/config error.')) as unknown as CommandModule<object, ReportArgs>['builder'],
  handler: runCommand(handler),
};
