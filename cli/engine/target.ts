import { CliError } from '../cli-error.ts';
import { createHandshakeAuth, type AuthOptions, type HandshakeAuth } from './auth.ts';
import { connect, type ConnectFailure, type ConnectOptions, type ConnectResult } from './connection.ts';
import { readHostLimits, runPreflight, type PreflightCheck } from './preflight.ts';
import type { SaturationLimits } from './saturation.ts';

/**
 * The target half of the run harness, shared by every load (flood's models and storm): the safety
 * caps, the URL check, the generator host's pre-flight, the first token minted before anything is
 * sent, and one `dial()` that mints a user's token, picks the source address and connects. Flood
 * and storm used to carry a copy each, and the copies drifted (loopback detection by regex in one,
 * no URL check in the other); here there is one.
 */
export interface Caps {
  maxConnections: number;
  maxConnRate: number;
  maxMsgRate: number;
  maxDurationSec: number;
}

export const DEFAULT_CAPS: Caps = Object.freeze({ maxConnections: 10_000, maxConnRate: 2_000, maxMsgRate: 200_000, maxDurationSec: 3_600 });

/** How every toolkit run reaches its target and guards itself: shared by flood and storm. */
export interface TargetOptions {
  url: string;
  handshakeTimeoutMs: number;
  closeGraceMs: number;
  auth?: AuthOptions;
  origin?: string;
  sourceIps?: string[];
  /**
   * Virtual user of connection k is userOffset + k·userStride: shares (workers, shards, both
   * nested) interleave, so their users never collide and tokens stay distinct.
   */
  userOffset?: number;
  userStride?: number;
  /** Accept any TLS certificate (self-signed test setups). */
  insecure?: boolean;
  caps: Caps;
  saturation: SaturationLimits;
  /** Skip the fatal pre-flight verdict (checks are still reported). */
  ignorePreflight?: boolean;
}

/** What a load asks of the host and the caps: each load model computes it from its own options. */
export interface LoadDemand {
  durationSec: number;
  peakConnections: number;
  /** New connections per second at most. */
  connRate: number;
  /** Messages per second at most, over all connections. */
  msgRate: number;
  /** Flag that sets the connection rate, for the cap message. */
  connRateFlag: string;
}

export function isLoopback(url: string): boolean {
  const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

/** A usage error (exit 3) naming the URL, not a run in which every attempt fails. */
export function checkTargetUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new CliError('usage', `invalid target URL ${url}`, { cause: err });
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
    throw new CliError('usage', `target must be ws:// or wss://, got ${parsed.protocol}`);
}

/** Refuses a load above a safety cap before anything is sent (exit 3, naming the cap). */
export function checkCaps(d: LoadDemand, caps: Caps): void {
  if (d.durationSec > caps.maxDurationSec) {
    throw new CliError('cap_exceeded', `--duration ${d.durationSec}s exceeds --max-duration ${caps.maxDurationSec}s`);
  }
  if (d.peakConnections > caps.maxConnections) {
    throw new CliError(
      'cap_exceeded',
      `the run would hold up to ${d.peakConnections} connections, above --max-connections ${caps.maxConnections}`,
    );
  }
  if (d.connRate > caps.maxConnRate) {
    throw new CliError('cap_exceeded', `${d.connRateFlag} ${d.connRate} new connections/s exceeds --max-conn-rate ${caps.maxConnRate}`);
  }
  if (d.msgRate > caps.maxMsgRate) {
    throw new CliError('cap_exceeded', `${d.msgRate} msg/s in total exceeds --max-msg-rate ${caps.maxMsgRate}`);
  }
}

export class Target {
  readonly preflight: PreflightCheck[];
  readonly fdLimit: number | undefined;
  readonly #o: TargetOptions;
  readonly #handshake: (userIndex: number) => Promise<HandshakeAuth>;

  private constructor(o: TargetOptions, preflight: PreflightCheck[], fdLimit: number | undefined) {
    this.#o = o;
    this.preflight = preflight;
    this.fdLimit = fdLimit;
    this.#handshake = createHandshakeAuth(o.url, o.auth);
  }

  /**
   * Everything that can be wrong before the first connection: the URL, the caps, the host
   * (pre-flight; exit 2 unless ignored), the token keys and claims (minted once now, so a mistake is
   * a usage error, not a run full of failed attempts).
   */
  static async prepare(o: TargetOptions, demand: LoadDemand): Promise<Target> {
    checkTargetUrl(o.url);
    checkCaps(demand, o.caps);
    const limits = readHostLimits();
    const preflight = runPreflight(
      {
        peakConnections: demand.peakConnections,
        connRate: demand.connRate,
        durationSec: demand.durationSec,
        sourceIpCount: o.sourceIps?.length ?? 1,
        targetIsLoopback: isLoopback(o.url),
      },
      limits,
    );
    const fatal = preflight.filter((c) => c.fatal && !c.ok);
    if (fatal.length > 0 && !o.ignorePreflight) {
      throw new CliError('preflight', `pre-flight failed: ${fatal.map((c) => c.message).join('; ')}`);
    }
    const target = new Target(o, preflight, limits.fdLimit);
    await target.#handshake(target.userIndex(0));
    return target;
  }

  /** Virtual user of the k-th connection (or client) of this share. */
  userIndex(k: number): number {
    return (this.#o.userOffset ?? 0) + k * (this.#o.userStride ?? 1);
  }

  /** One attempt for connection (or client) `k`; every failure is a named outcome, never a throw. */
  dial(k: number): Promise<ConnectResult> {
    return this.dialWith(k, connect);
  }

  /** dial() through another client (flood's lean transport); the same token, source address and options. */
  async dialWith<R extends { ok: boolean }>(
    k: number,
    connectWith: (o: ConnectOptions) => Promise<R | ConnectFailure>,
  ): Promise<R | ConnectFailure> {
    let h: HandshakeAuth;
    try {
      h = await this.#handshake(this.userIndex(k));
    } catch (err) {
      // Minting was checked before the run; a later failure is counted, not thrown into the void.
      return { ok: false, outcome: 'error.TOKEN_MINT', detail: (err as Error).message, connectMs: 0 };
    }
    const sources = this.#o.sourceIps;
    return connectWith({
      url: h.url,
      headers: h.headers,
      protocols: h.protocols,
      origin: this.#o.origin,
      handshakeTimeoutMs: this.#o.handshakeTimeoutMs,
      localAddress: sources && sources.length > 0 ? sources[k % sources.length] : undefined,
      rejectUnauthorized: this.#o.insecure ? false : undefined,
    });
  }
}
