import { performance } from 'node:perf_hooks';
import { createHistogram, recordMs, summarize, type LatencySummary } from '../engine/histogram.ts';

/** What a fanout step reports: per message, the latency to its first and to its last receiver. */
export interface FanoutSummary {
  /** Messages the sender sent. */
  messages: number;
  /** Receivers listening when each message left, summed over messages (deliveries expected). */
  expected: number;
  /** Deliveries seen (one per receiver per message). */
  delivered: number;
  /** Expected deliveries that never arrived within the step's timeout. */
  missing: number;
  /** Messages no receiver got. */
  lostMessages: number;
  /** Send-to-first-receiver latency per message, from the intended send time. */
  first: LatencySummary;
  /** Send-to-last-receiver latency per message (messages some expected receiver missed are left out; see `missing`). */
  last: LatencySummary;
  /** Every delivery. */
  each: LatencySummary;
}

interface Msg {
  expected: number;
  got: number;
  min: number;
  max: number;
}

/** Epoch milliseconds with the sub-millisecond precision of the monotonic clock. */
export function epochMs(perfNow = performance.now()): number {
  return performance.timeOrigin + perfNow;
}

/**
 * One fanout step of a run. Sender and receivers live in this process, but the latency is taken
 * from the epoch time carried in each message (`{"fanout":id,"seq":n,"t":intended}`), so a message
 * that reaches a receiver through any path is measured the same way. The clock starts at the
 * intended send time: a sender that falls behind its pace does not hide the delay (coordinated omission).
 */
export class FanoutTracker {
  readonly id: string;
  readonly sender: number;
  listeners = 0;
  senderDone = false;
  /** performance.now() of the latest intended send, for the receivers' timeout. */
  lastIntended = -Infinity;
  #nextSeq = 0;
  readonly #msgs = new Map<number, Msg>();
  readonly #each = createHistogram();
  #delivered = 0;
  readonly #waiters = new Set<() => void>();

  constructor(id: string, sender: number) {
    this.id = id;
    this.sender = sender;
  }

  /** The next message's text; registers it as sent to the receivers listening now. */
  message(intendedPerf: number, sizeBytes: number | undefined): string {
    const seq = this.#nextSeq++;
    this.#msgs.set(seq, { expected: this.listeners, got: 0, min: Infinity, max: -Infinity });
    this.lastIntended = intendedPerf;
    const text = JSON.stringify({ fanout: this.id, seq, t: epochMs(intendedPerf) });
    if (sizeBytes === undefined || sizeBytes <= text.length) return text;
    return `${text.slice(0, -1)},"pad":"${'x'.repeat(Math.max(0, sizeBytes - text.length - 9))}"}`;
  }

  /** A receiver saw `data` at epoch `arrivedMs`; true when it was one of this step's messages. */
  receive(data: string, arrivedMs: number): boolean {
    if (!data.startsWith('{"fanout":')) return false;
    let m: { fanout?: unknown; seq?: unknown; t?: unknown };
    try {
      m = JSON.parse(data) as typeof m;
    } catch {
      return false;
    }
    if (m.fanout !== this.id || typeof m.seq !== 'number' || typeof m.t !== 'number') return false;
    const msg = this.#msgs.get(m.seq);
    if (!msg) return false;
    const ms = arrivedMs - m.t;
    msg.got++;
    msg.min = Math.min(msg.min, ms);
    msg.max = Math.max(msg.max, ms);
    this.#delivered++;
    recordMs(this.#each, ms);
    return true;
  }

  get sent(): number {
    return this.#nextSeq;
  }

  /** Wakes whoever waits for listeners or for the sender to finish. */
  notify(): void {
    for (const w of this.#waiters) w();
  }

  onChange(w: () => void): () => void {
    this.#waiters.add(w);
    return () => this.#waiters.delete(w);
  }

  summary(): FanoutSummary {
    const first = createHistogram();
    const last = createHistogram();
    let expected = 0;
    let missing = 0;
    let lostMessages = 0;
    for (const m of this.#msgs.values()) {
      expected += m.expected;
      missing += Math.max(0, m.expected - m.got);
      if (m.got === 0) {
        lostMessages++;
        continue;
      }
      recordMs(first, m.min);
      if (m.got >= m.expected) recordMs(last, m.max);
    }
    return {
      messages: this.#nextSeq,
      expected,
      delivered: this.#delivered,
      missing,
      lostMessages,
      first: summarize(first),
      last: summarize(last),
      each: summarize(this.#each),
    };
  }
}
