import { CliError } from '../cli-error.ts';
import { createHistogram, decodeSummary, mergeSummaries, summarize } from './histogram.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import type { StormSection } from './storm-types.ts';

/**
 * Merges results of shards (`--shard i/n` on several machines) or worker threads into one result.
 * Counts add up; latency histograms merge exactly through their HdrHistogram encodings; per-second
 * percentiles cannot be merged exactly, so a merged second shows the worst shard's p50/p99 (an
 * upper bound, labelled as such in docs/cli.md).
 */
/**
 * `sameProcess`: the parts are worker threads of one process, whose CPU figures are each already
 * process-wide, so they are not added up.
 */
export function mergeResults(parts: RunResult[], opts: { sameProcess?: boolean } = {}): RunResult {
  if (parts.length === 0) throw new CliError('usage', 'nothing to merge');
  if (parts.length === 1) return parts[0]!;
  const kinds = new Set(parts.map((p) => p.kind));
  if (kinds.size > 1) throw new CliError('usage', `cannot merge ${[...kinds].join(' and ')} results`);
  const first = parts[0]!;
  const sum = (f: (r: RunResult) => number): number => parts.reduce((a, r) => a + f(r), 0);
  const addMaps = (maps: Record<string, number>[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  };
  const details: Record<string, Record<string, number>> = {};
  for (const p of parts) for (const [k, d] of Object.entries(p.outcomeDetails)) details[k] = addMaps([details[k] ?? {}, d]);
  const durationMs = Math.max(...parts.map((p) => p.durationMs));
  const activeSec = Math.max(1e-3, Math.max(...parts.map((p) => Number(p.config.durationSec) || p.durationMs / 1000)));
  const sent = sum((r) => r.messages.sent);
  const received = sum((r) => r.messages.received);
  const reasons = parts.flatMap((p, i) => p.saturation.reasons.map((r) => `shard ${i + 1}: ${r}`));
  const sat = parts.map((p) => p.saturation);
  const aborted = parts.find((p) => p.aborted)?.aborted;
  return {
    ...first,
    startedAt: parts.map((p) => p.startedAt).sort()[0]!,
    durationMs,
    shards: sum((r) => r.shards),
    shard: undefined,
    connections: {
      attempts: sum((r) => r.connections.attempts),
      opened: sum((r) => r.connections.opened),
      peakOpen: sum((r) => r.connections.peakOpen),
    },
    outcomes: addMaps(parts.map((p) => p.outcomes)),
    outcomeDetails: details,
    messages: {
      sent,
      received,
      lost: sum((r) => r.messages.lost),
      unmatched: sum((r) => r.messages.unmatched),
      bytesOut: sum((r) => r.messages.bytesOut),
      bytesIn: sum((r) => r.messages.bytesIn),
      ratePerSecOut: Math.round(sent / activeSec),
      ratePerSecIn: Math.round(received / activeSec),
    },
    latency: {
      rtt: mergeSummaries(parts.map((p) => p.latency.rtt)),
      rttUncorrected: mergeSummaries(parts.map((p) => p.latency.rttUncorrected)),
      connect: mergeSummaries(parts.map((p) => p.latency.connect)),
    },
    saturation: {
      verdict: sat.some((x) => x.verdict === 'saturated')
        ? 'saturated'
        : sat.some((x) => x.verdict === 'machine_busy')
          ? 'machine_busy'
          : 'ok',
      reasons,
      cause: sat.find((x) => x.verdict === 'saturated')?.cause ?? sat.find((x) => x.cause)?.cause,
      threadCpuCoresPeak: sat.some((x) => x.threadCpuCoresPeak !== undefined)
        ? Math.max(...sat.map((x) => x.threadCpuCoresPeak ?? 0))
        : undefined,
      machine: sat.find((x) => x.machine)?.machine,
      eventLoopP99Ms: Math.max(...sat.map((s) => s.eventLoopP99Ms)),
      eventLoopMaxMs: Math.max(...sat.map((s) => s.eventLoopMaxMs)),
      cpuCores: opts.sameProcess
        ? Math.max(...sat.map((s) => s.cpuCores))
        : Math.round(sat.reduce((a, s) => a + s.cpuCores, 0) * 100) / 100,
      cpuCoresPeak: opts.sameProcess
        ? Math.max(...sat.map((s) => s.cpuCoresPeak))
        : Math.round(sat.reduce((a, s) => a + s.cpuCoresPeak, 0) * 100) / 100,
      sendLagP99Ms: Math.max(...sat.map((s) => s.sendLagP99Ms)),
      scheduled: sat.reduce((a, s) => a + s.scheduled, 0),
      sent: sat.reduce((a, s) => a + s.sent, 0),
      fdPeak: Math.max(...sat.map((s) => s.fdPeak ?? 0)),
      fdLimit: Math.min(...sat.map((s) => s.fdLimit ?? Number.MAX_SAFE_INTEGER)),
      selfInflicted: addMaps(sat.map((s) => s.selfInflicted)),
    },
    preflight: parts.flatMap((p) => p.preflight.filter((c) => !c.ok)),
    aborted,
    series: mergeSeries(
      parts.map((p) => p.series),
      opts.sameProcess === true,
    ),
    storm: first.storm ? mergeStorm(parts.map((p) => p.storm!)) : undefined,
    thresholds: undefined,
    verdict: undefined,
  };
}

function mergeSeries(all: SeriesPoint[][], sameProcess: boolean): SeriesPoint[] {
  const byT = new Map<number, SeriesPoint>();
  for (const series of all) {
    for (const p of series) {
      const m = byT.get(p.t);
      if (!m) {
        byT.set(p.t, { ...p, outcomes: { ...p.outcomes } });
        continue;
      }
      m.open += p.open;
      m.opening += p.opening;
      m.attempts += p.attempts;
      m.opened += p.opened;
      m.sent += p.sent;
      m.received += p.received;
      m.bytesOut += p.bytesOut;
      m.bytesIn += p.bytesIn;
      m.cpuCores = sameProcess ? Math.max(m.cpuCores, p.cpuCores) : Math.round((m.cpuCores + p.cpuCores) * 100) / 100;
      m.rttP50Ms = Math.max(m.rttP50Ms, p.rttP50Ms);
      m.rttP99Ms = Math.max(m.rttP99Ms, p.rttP99Ms);
      if (m.rttCount !== undefined || p.rttCount !== undefined) m.rttCount = (m.rttCount ?? 0) + (p.rttCount ?? 0);
      for (const [k, v] of Object.entries(p.outcomes)) m.outcomes[k] = (m.outcomes[k] ?? 0) + v;
    }
  }
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

function mergeStorm(parts: StormSection[]): StormSection {
  const recoverH = createHistogram();
  for (const p of parts) if (p.recover.count > 0) recoverH.add(decodeSummary(p.recover));
  const dropped = parts.reduce((a, p) => a + p.dropped, 0);
  const recovered = parts.reduce((a, p) => a + p.recovered, 0);
  const timeToPercentMs: Record<string, number | null> = {};
  for (const pct of Object.keys(parts[0]!.timeToPercentMs)) {
    const need = Math.ceil((dropped * Number(pct)) / 100);
    // The need-th fastest recovery is the merged histogram's value at need/recovered.
    timeToPercentMs[pct] =
      need === 0 ? 0 : recovered >= need ? Math.round(recoverH.getValueAtPercentile((need / recovered) * 100) / 1000) : null;
  }
  const hist: Record<string, number> = {};
  let weighted = 0;
  let clients = 0;
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.attemptsPerClient.histogram)) {
      hist[k] = (hist[k] ?? 0) + v;
      weighted += Number(k) * v;
      clients += v;
    }
  }
  const rej: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.rejectionsDuringRecovery)) rej[k] = (rej[k] ?? 0) + v;
  return {
    ...parts[0]!,
    held: parts.reduce((a, p) => a + p.held, 0),
    dropped,
    recover: summarize(recoverH),
    timeToPercentMs,
    recovered,
    gaveUp: parts.reduce((a, p) => a + p.gaveUp, 0),
    attemptsPerClient: {
      mean: clients ? Math.round((weighted / clients) * 100) / 100 : 0,
      max: Math.max(...parts.map((p) => p.attemptsPerClient.max)),
      histogram: hist,
    },
    rejectionsDuringRecovery: rej,
    delaysMs: mergeSummaries(parts.map((p) => p.delaysMs)),
    retryAfterHonoured: parts.reduce((a, p) => a + p.retryAfterHonoured, 0),
  };
}
