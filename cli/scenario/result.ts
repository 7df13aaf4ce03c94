import type { FanoutSummary } from './fanout.ts';

/** One named check: how often it held, and the first time it did not. */
export interface CheckSummary {
  passes: number;
  fails: number;
  firstFailure?: {
    user: number;
    /** Where the step is in the file, e.g. `steps[3]` or `steps[2].loop.steps[0]`. */
    step: string;
    stepName?: string;
    reason: string;
    /** The last message received before the expect gave up (redacted, shortened); null when none came. */
    received: string | null;
  };
}

/** The scenario part of a result (kind 'scenario'). */
export interface ScenarioSection {
  file: string;
  /** finished: ran every step; stopped: ended by the run (duration, ramp down, SIGINT); failed: a step could not go on. */
  users: { started: number; finished: number; stopped: number; failed: number };
  checks: Record<string, CheckSummary>;
  /** Steps that could not run (sending without a connection, a dropped inbox message), by what happened. */
  errors: Record<string, number>;
  /** Per fanout step (its name, else its place in the file). */
  fanout: Record<string, FanoutSummary>;
}
