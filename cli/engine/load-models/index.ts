import { CliError } from '../../cli-error.ts';
import { ArrivalRate } from './constant-arrival-rate.ts';
import { ConstantConnections } from './constant-vus.ts';
import type { Caps } from '../target.ts';
import type { LoadModel } from './model.ts';
import { RampingConnections, type Stage } from './ramping-vus.ts';

export type { ArrivalContext, LoadModel } from './model.ts';
export { TickContext } from './model.ts';
export { stageTarget, type Stage } from './ramping-vus.ts';

/** The flood options that choose and shape a load model. */
export interface LoadShape {
  durationSec: number;
  /** Fixed model: hold this many connections. */
  connections?: number;
  /** Open model: new connections per second, each held `holdSec` (default: to the end). */
  arrivalRate?: number;
  holdSec?: number;
  /** Ramp model. */
  stages?: Stage[];
  /** Cap on new connections per second for fixed and ramp models (default: caps.maxConnRate). */
  connectRate?: number;
  caps: Caps;
}

/** The one model the options ask for (exactly one of --connections, --arrival-rate, --stages). */
export function loadModelFor(o: LoadShape): LoadModel {
  const models = [o.connections !== undefined, o.arrivalRate !== undefined, o.stages !== undefined].filter(Boolean).length;
  if (models !== 1) throw new CliError('usage', 'choose exactly one of --connections, --arrival-rate, --stages');
  const connectRate = o.connectRate ?? o.caps.maxConnRate;
  if (o.connections !== undefined) return new ConstantConnections(o.connections, connectRate);
  if (o.arrivalRate !== undefined) return new ArrivalRate(o.arrivalRate, o.holdSec, o.durationSec);
  return new RampingConnections(o.stages!, connectRate);
}

/** Peak open connections of a flood, for caps, --source-ip auto and the worker split. */
export function peakConnections(o: LoadShape): number {
  return loadModelFor(o).peakConnections();
}
