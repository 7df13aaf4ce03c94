import type { Logger } from 'pino';
import { settingForReason } from '../errors.ts';

/**
 * One log line per handshake rejection, without letting a flood drown the log: per reason and per
 * interval the first `linesPerInterval` rejections are logged in full, the rest are only counted and
 * reported in one summary line when the interval ends ("rejections suppressed", with the count).
 */
export interface RejectionLogOptions {
  intervalMs: number;
  linesPerInterval: number;
}

export interface RejectionEvent {
  route: string;
  reason: string;
  decision: string;
  /** Client key (IP or /64). Logged so that operators can act; logs are not metrics. */
  client: string;
}

export class RejectionLog {
  readonly #logger: Logger;
  readonly #opts: RejectionLogOptions;
  /** reason → lines logged and rejections suppressed in the current interval */
  #window = new Map<string, { logged: number; suppressed: number; routes: Set<string> }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, opts: RejectionLogOptions) {
    this.#logger = logger;
    this.#opts = opts;
  }

  record(event: RejectionEvent): void {
    let w = this.#window.get(event.reason);
    if (!w) {
      w = { logged: 0, suppressed: 0, routes: new Set() };
      this.#window.set(event.reason, w);
    }
    if (w.logged < this.#opts.linesPerInterval) {
      w.logged++;
      const setting = settingForReason(event.reason);
      this.#logger.info({ event: 'handshake_rejected', ...event, ...(setting ? { setting } : {}) }, 'handshake rejected');
    } else {
      w.suppressed++;
      if (w.routes.size < 16) w.routes.add(event.route);
    }
    // The timer runs only while something happened, so an idle gateway schedules nothing.
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#opts.intervalMs);
      this.#timer.unref();
    }
  }

  /** Ends the interval: one summary line per reason that had suppressed rejections. */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const [reason, w] of this.#window) {
      if (w.suppressed > 0) {
        this.#logger.warn(
          {
            event: 'handshake_rejections_suppressed',
            reason,
            suppressed: w.suppressed,
            logged: w.logged,
            interval_ms: this.#opts.intervalMs,
            routes: [...w.routes],
          },
          'rejections suppressed',
        );
      }
    }
    this.#window.clear();
  }
}
