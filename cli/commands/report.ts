import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../cli-error.ts';
import type { RunResult } from '../engine/result.ts';
import { decideVerdict, evaluateThresholds, loadThresholdFile, parseThreshold } from '../engine/thresholds.ts';
import { EXIT_PASSED } from '../exit-codes.ts';
import { renderHtml, renderProbeHtml } from '../report/html.ts';
import { probeVerdict, renderProbeMarkdown, renderProbeTerminal } from '../report/probe.ts';
import { fmtBytes } from '../report/format.ts';
import type { ProbeReport } from '../engine/probe/suite.ts';
import { checkOneRun } from '../run-identity.ts';
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

type Loaded = { kind: 'run'; result: RunResult } | { kind: 'probe'; probe: ProbeReport };

function load(path: string): Loaded {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('config', `${path}: ${(err as Error).message}`, { cause: err });
  }
  const d = doc as Omit<Partial<RunResult>, 'kind'> & Partial<Omit<ProbeReport, 'kind' | 'version'>> & { kind?: string };
  // Probe results written before they carried a kind are recognised by their shape.
  if (d.kind === 'probe' || (d.kind === undefined && Array.isArray(d.checks) && typeof d.target === 'string'))
    return { kind: 'probe', probe: d as unknown as ProbeReport };
  if (d.version !== 1 || (d.kind !== 'flood' && d.kind !== 'storm' && d.kind !== 'scenario'))
    throw new CliError('config', `${path}: not a wsguard result (write one with --json on flood, storm, run or probe)`);
  return { kind: 'run', result: d as RunResult };
}

function writeOut(a: ReportArgs, text: string): void {
  if (!a.out) return void process.stdout.write(text);
  try {
    writeFileSync(a.out, text);
  } catch (err) {
    throw new CliError('config', `--out ${a.out}: ${(err as Error).message}`, { cause: err });
  }
  process.stdout.write(`wrote ${a.format} report to ${resolve(a.out)} (${fmtBytes(Buffer.byteLength(text))})\n`);
}

function reportProbe(a: ReportArgs, p: ProbeReport): number {
  if (a.threshold || a.thresholdsFile)
    throw new CliError('usage', '--threshold applies to flood and storm results; a probe result has checks');
  if (a.format === 'ndjson') throw new CliError('usage', 'a probe result has no time series: use -f text, md, html or json');
  const text =
    a.format === 'html'
      ? renderProbeHtml(p)
      : a.format === 'md'
        ? renderProbeMarkdown(p)
        : a.format === 'json'
          ? JSON.stringify(p, null, 2) + '\n'
          : renderProbeTerminal(p);
  writeOut(a, text);
  return probeVerdict(p).exitCode;
}

async function handler(a: ReportArgs): Promise<number> {
  const loaded = a.files.map(load);
  const probes = loaded.filter((l) => l.kind === 'probe');
  if (probes.length > 0) {
    if (loaded.length > 1) throw new CliError('usage', 'a probe result is reported on its own: name one file');
    return reportProbe(a, probes[0]!.probe);
  }
  const results = loaded.map((l) => (l as { result: RunResult }).result);
  checkOneRun(a.files, results);
  // Checks and fan-out histograms are not merged yet, and `run` has no --shard: one file only.
  if (results.length > 1 && results.some((r) => r.kind === 'scenario'))
    throw new CliError('usage', 'a scenario result (wsguard run) is reported on its own: name one file');
  let r = mergeResults(results);
  const thresholds = [...(a.threshold ?? []).map(parseThreshold), ...(a.thresholdsFile ? loadThresholdFile(a.thresholdsFile) : [])];
  // Thresholds re-evaluated on the merged result: the verdict for a sharded run as a whole.
  if (thresholds.length > 0 || results.length > 1) {
    r = { ...r, thresholds: evaluateThresholds(r, thresholds) };
    r.verdict = decideVerdict(r, r.thresholds!);
  }
  const text =
    a.format === 'html'
      ? renderHtml(r)
      : a.format === 'md'
        ? renderMarkdown(r)
        : a.format === 'json'
          ? JSON.stringify(r, null, 2) + '\n'
          : a.format === 'ndjson'
            ? toNdjson(r)
            : renderTerminal(r);
  writeOut(a, text);
  return r.verdict?.exitCode ?? EXIT_PASSED;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <files..>',
  describe: 'Render saved results (text, Markdown, HTML with charts, JSON, NDJSON); merge shards',
  builder: ((y: Argv) =>
    y
      .positional('files', {
        type: 'string',
        array: true,
        demandOption: true,
        description: 'Result JSON files written with --json (flood, storm, probe); several: the shards of one run',
      })
      .option('format', {
        alias: 'f',
        choices: ['text', 'md', 'html', 'json', 'ndjson'] as const,
        default: 'text' as const,
        description: 'Output format',
      })
      .option('out', { alias: 'o', type: 'string', description: 'Write to this file instead of stdout' })
      .option('threshold', { type: 'string', array: true, description: 'Re-evaluate thresholds on the (merged) result' })
      .option('thresholds-file', { type: 'string', description: 'YAML/JSON list of threshold expressions' })
      .example('$0 report result.json', 'terminal summary')
      .example('$0 report result.json -f html -o report.html', 'self-contained HTML with charts')
      .example(
        "$0 report shard-*.json -f md --threshold 'p99_rtt_ms<50'",
        'merge shards, Markdown summary, exit 1 if the merged p99 is too high',
      )
      .epilogue(
        'Exit codes: 0 passed (or no thresholds), 1 threshold failed, 2 a merged shard was invalid, 3 usage/config error.',
      )) as unknown as CommandModule<object, ReportArgs>['builder'],
  handler: runCommand(handler),
};
