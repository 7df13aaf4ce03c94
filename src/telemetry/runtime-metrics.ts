import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Meter } from '@opentelemetry/api';
import { CPU_MODES, RUNTIME_ATTR, RUNTIME_INSTRUMENTS as R } from './names.ts';

/**
 * Node runtime health under the OpenTelemetry semantic-convention names that
 * @opentelemetry/instrumentation-runtime-node would emit (nodejs.eventloop.delay.*,
 * nodejs.eventloop.utilization, v8js.memory.heap.*, process.cpu.time, process.memory.usage); that
 * package is not installed, so these few observable instruments do the same with perf_hooks and
 * process. Everything is read at collection time: nothing runs on the hot path.
 *
 * Event-loop delay percentiles cover the time since the previous collection (the histogram is reset
 * after each read), so each scrape shows the recent loop health, not a lifetime average.
 */
export function startRuntimeMetrics(meter: Meter): { stop(): void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();

  const gauge = (name: string, description: string, unit: string) => meter.createObservableGauge(name, { description, unit });
  const dMin = gauge(R.eventLoopDelayMin, 'Event loop delay minimum since the previous collection', 's');
  const dMax = gauge(R.eventLoopDelayMax, 'Event loop delay maximum since the previous collection', 's');
  const dMean = gauge(R.eventLoopDelayMean, 'Event loop delay mean since the previous collection', 's');
  const dStd = gauge(R.eventLoopDelayStddev, 'Event loop delay standard deviation since the previous collection', 's');
  const d50 = gauge(R.eventLoopDelayP50, 'Event loop delay 50th percentile since the previous collection', 's');
  const d90 = gauge(R.eventLoopDelayP90, 'Event loop delay 90th percentile since the previous collection', 's');
  const d99 = gauge(R.eventLoopDelayP99, 'Event loop delay 99th percentile since the previous collection', 's');
  const elu = gauge(R.eventLoopUtilization, 'Share of time the event loop was busy since the previous collection', '1');
  const heapUsed = gauge(R.heapUsed, 'V8 heap memory used, per heap space', 'By');
  const heapLimit = gauge(R.heapLimit, 'V8 heap memory size, per heap space', 'By');
  const rss = gauge(R.memoryUsage, 'Resident set size of the process', 'By');
  const cpu = meter.createObservableCounter(R.cpuTime, { description: 'CPU time used by the process', unit: 's' });

  const ns = (v: number) => (Number.isFinite(v) ? v / 1e9 : 0);
  const batch = (result: import('@opentelemetry/api').BatchObservableResult) => {
    // monitorEventLoopDelay reports min = 9.2e18 before its first sample: treat an empty histogram as 0.
    const empty = delay.count === 0;
    result.observe(dMin, empty ? 0 : ns(delay.min));
    result.observe(dMax, empty ? 0 : ns(delay.max));
    result.observe(dMean, empty ? 0 : ns(delay.mean));
    result.observe(dStd, empty ? 0 : ns(delay.stddev));
    result.observe(d50, empty ? 0 : ns(delay.percentile(50)));
    result.observe(d90, empty ? 0 : ns(delay.percentile(90)));
    result.observe(d99, empty ? 0 : ns(delay.percentile(99)));
    delay.reset();
    const current = performance.eventLoopUtilization();
    result.observe(elu, performance.eventLoopUtilization(current, lastElu).utilization);
    lastElu = current;
    for (const space of getHeapSpaceStatistics()) {
      const attrs = { [RUNTIME_ATTR.heapSpace]: space.space_name };
      result.observe(heapUsed, space.space_used_size, attrs);
      result.observe(heapLimit, space.space_size, attrs);
    }
    result.observe(rss, process.memoryUsage.rss());
    const usage = process.cpuUsage();
    result.observe(cpu, usage.user / 1e6, { [RUNTIME_ATTR.cpuMode]: CPU_MODES[0] });
    result.observe(cpu, usage.system / 1e6, { [RUNTIME_ATTR.cpuMode]: CPU_MODES[1] });
  };
  meter.addBatchObservableCallback(batch, [dMin, dMax, dMean, dStd, d50, d90, d99, elu, heapUsed, heapLimit, rss, cpu]);
  return {
    stop() {
      meter.removeBatchObservableCallback(batch, [dMin, dMax, dMean, dStd, d50, d90, d99, elu, heapUsed, heapLimit, rss, cpu]);
      delay.disable();
    },
  };
}
