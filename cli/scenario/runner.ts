import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { CLOSE } from '../../src/relay/close-codes.ts';
import { CliError } from '../cli-error.ts';
import { createHandshakeAuth, readKeyFile, type AuthOptions, type HandshakeAuth } from '../engine/auth.ts';
import { connect, watchEnd } from '../engine/connection.ts';
import type { RunHooks } from '../engine/flood.ts';
import { recordMs } from '../engine/histogram.ts';
import { createPayloadFactory } from '../engine/payload.ts';
import { loadModelFor, TickContext, type LoadModel, type LoadShape } from '../engine/load-models/index.ts';
import { Recorder, redactText } from '../engine/recorder.ts';
import type { RunResult } from '../engine/result.ts';
import { DEFAULT_SATURATION_LIMITS } from '../engine/saturation.ts';
import { Target, type TargetOptions } from '../engine/target.ts';
import type { DataRow } from './data.ts';
import { epochMs, FanoutTracker } from './fanout.ts';
import type { LoadedScenario } from './load.ts';
import { durationMs, showPath, type AuthSpec, type StepSpec } from './schema.ts';
import { escapeRegex, jsonPath, render, renderJson, type Vars } from './template.ts';
import type { CheckSummary, ScenarioSection } from './result.ts';

export interface ScenarioOptions extends TargetOptions, LoadShape {
  url: string;
  durationSec: number;
  /** After the duration, how long started users may finish before they are stopped. */
  gracefulStopMs: number;
  loaded: LoadedScenario;
}

export const SCENARIO_DEFAULTS = Object.freeze({
  expectTimeoutMs: 5_000,
  pingTimeoutMs: 5_000,
  fanoutTimeoutMs: 5_000,
  floodDrainMs: 1_000,
  gracefulStopMs: 5_000,
  closeGraceMs: 2_000,
  handshakeTimeoutMs: 5_000,
});

/** Arrivals and the end of the run are decided on this tick; steps run on their own timers and events. */
const TICK_MS = 5;
/** Messages kept per user between expects; older ones are dropped (and counted) so a chatty room cannot grow memory. */
const INBOX_MAX = 10_000;
/** flood's marker (cli/engine/payload.ts) in an echo's text. */
const MARKER = /wsg:(\d+);/;
/** Characters of a received message quoted in a failed check. */
const QUOTE_MAX = 200;

interface Received {
  text: string;
  binary: boolean;
  at: number;
}

/** A step that cannot go on: the user stops there. */
class StepFailed extends Error {}

/**
 * A scenario run. The load model (the same fixed, open and ramp models flood uses) decides when
 * virtual users start; each user runs the steps in order; everything is counted into the same
 * Recorder flood and storm use, so outcomes, latency, saturation and thresholds mean the same.
 */
export async function runScenario(opts: ScenarioOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const model = loadModelFor(opts);
  if (!(opts.durationSec > 0)) throw new CliError('usage', 'load.duration must be > 0');
  const rate = model.connRate();
  const target = await Target.prepare(opts, {
    durationSec: opts.durationSec,
    peakConnections: model.peakConnections(),
    connRate: rate.perSec,
    connRateFlag: rate.flag,
    msgRate: 0,
  });
  const run = new ScenarioRun(opts, hooks, target, model);
  await run.checkAuth();
  return run.run();
}

export class ScenarioRun {
  readonly rec: Recorder;
  readonly o: ScenarioOptions;
  readonly target: Target;
  readonly #model: LoadModel;
  readonly #hooks: RunHooks;
  readonly #users = new Set<VirtualUser>();
  readonly #endAt: number;
  readonly checks = new Map<string, CheckSummary>();
  readonly errors = new Map<string, number>();
  readonly fanouts = new Map<string, FanoutTracker>();
  /** Echoes flood steps never got. */
  lost = 0;
  readonly #handshakes = new Map<string, (i: number) => Promise<HandshakeAuth>>();
  readonly #keys = new Map<string, string>();
  #started = 0;
  #finished = 0;
  #stopped = 0;
  #failed = 0;
  #phase: 'running' | 'grace' | 'done' = 'running';
  #aborted: RunResult['aborted'];
  #lastTick: number;
  #nextSampleAt: number;
  #timer: NodeJS.Timeout | undefined;
  #finish!: () => void;
  readonly #ctx: TickContext;

  constructor(o: ScenarioOptions, hooks: RunHooks, target: Target, model: LoadModel) {
    this.o = o;
    this.#hooks = hooks;
    this.target = target;
    this.#model = model;
    this.rec = new Recorder(hooks.onSample, hooks.onLive);
    this.#endAt = this.rec.t0 + o.durationSec * 1000;
    this.#lastTick = this.rec.t0;
    this.#nextSampleAt = this.rec.t0 + 1000;
    this.#ctx = new TickContext({ start: (lateMs) => this.startUser(lateMs), windDown: (n) => this.windDown(n) });
    registerChecksAndFanouts(o.loaded.scenario.steps, ['steps'], this);
  }

  /** Mints user 0's token for every connect step before anything is sent, so a bad key or claim is a usage error. */
  async checkAuth(): Promise<void> {
    const vars = userVars(this.o.loaded.data, 0, this.target.userIndex(0));
    for (const spec of connectSpecs(this.o.loaded.scenario.steps)) await this.handshake(spec, vars, this.target.userIndex(0));
  }

  async run(): Promise<RunResult> {
    const done = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#abort('aborted by signal (SIGINT)');
    this.#hooks.signal?.addEventListener('abort', onAbort, { once: true });
    this.#tick();
    await done;
    this.#hooks.signal?.removeEventListener('abort', onAbort);
    return this.#result();
  }

  #tick(): void {
    const now = performance.now();
    const dt = (now - this.#lastTick) / 1000;
    this.#lastTick = now;
    if (this.#phase === 'running') {
      if (now >= this.#endAt) this.#beginGrace();
      else {
        this.#ctx.set((now - this.rec.t0) / 1000, dt, this.#started, this.#users.size);
        this.#model.tick(this.#ctx);
        // A fixed number of users that have all finished: the scenario is over before its duration.
        if (this.#model.name === 'constant-vus' && this.#started >= this.#model.peakConnections() && this.#users.size === 0)
          this.#complete();
      }
    }
    if (this.#phase === 'grace' && (this.#users.size === 0 || now >= this.#endAt + this.o.gracefulStopMs)) {
      for (const u of this.#users) u.stop('stopped at the end of the run');
      if (this.#users.size === 0 || now >= this.#endAt + this.o.gracefulStopMs + this.o.closeGraceMs) this.#complete();
    }
    if (now >= this.#nextSampleAt) {
      this.#nextSampleAt += 1000;
      this.rec.sample(now);
    }
    if (this.#phase !== 'done') this.#timer = setTimeout(() => this.#tick(), TICK_MS);
  }

  startUser(lateMs?: number): void {
    if (lateMs !== undefined) recordMs(this.rec.sendLag, lateMs);
    const k = this.#started++;
    const u = new VirtualUser(this, k, this.target.userIndex(k));
    this.#users.add(u);
    void u.run().then((end) => {
      this.#users.delete(u);
      if (end === 'finished') this.#finished++;
      else if (end === 'stopped') this.#stopped++;
      else this.#failed++;
      for (const f of this.fanouts.values()) {
        if (f.sender === u.userIndex) {
          f.senderDone = true;
          f.notify();
        }
      }
    });
  }

  windDown(n: number): void {
    for (const u of this.#users) {
      if (n-- <= 0) return;
      u.stop('ramp down');
    }
  }

  check(name: string, ok: boolean, failure?: () => CheckSummary['firstFailure']): void {
    const c = this.checks.get(name) ?? { passes: 0, fails: 0 };
    this.checks.set(name, c);
    if (ok) c.passes++;
    else {
      c.fails++;
      c.firstFailure ??= failure?.();
    }
  }

  error(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }

  /** The handshake for a connect step: the command line's auth, the file's `auth:` over it, the step's over that. */
  async handshake(spec: ConnectSpec, vars: Vars, userIndex: number): Promise<HandshakeAuth> {
    const base = this.o.loaded.scenario.auth ?? {};
    const s: AuthSpec = { ...base, ...spec, jwt: spec.jwt ?? base.jwt };
    const url = spec.url
      ? render(spec.url, vars)
      : spec.path
        ? new URL(render(spec.path, vars), this.o.url).toString()
        : render(this.o.url, vars);
    const a = this.o.auth ?? {};
    const claims = s.jwt?.claims;
    const auth: AuthOptions = {
      headers: { ...a.headers, ...Object.fromEntries(Object.entries(s.headers ?? {}).map(([k, v]) => [k, render(v, vars)])) },
      token: s.token !== undefined ? render(s.token, vars) : a.token,
      tokenIn: s.tokenIn ?? a.tokenIn,
      queryParam: s.tokenParam ?? a.queryParam,
      subprotocolPrefix: s.tokenSubprotocolPrefix ?? a.subprotocolPrefix,
      subprotocols: s.subprotocols ?? a.subprotocols,
      jwt: s.jwt
        ? {
            alg: s.jwt.alg,
            secret: s.jwt.secret ?? a.jwt?.secret,
            privateKeyPem: s.jwt.keyFile ? this.#key(s.jwt.keyFile) : a.jwt?.privateKeyPem,
            claimsTemplate:
              claims === undefined
                ? a.jwt?.claimsTemplate
                : render(typeof claims === 'string' ? claims : JSON.stringify(claims), vars, (v) => JSON.stringify(v).slice(1, -1)),
            expSec: s.jwt.exp ?? a.jwt?.expSec ?? 300,
            kid: s.jwt.kid ?? a.jwt?.kid,
          }
        : a.jwt,
    };
    const key = JSON.stringify([url, auth]);
    let h = this.#handshakes.get(key);
    if (!h) {
      h = createHandshakeAuth(url, auth);
      this.#handshakes.set(key, h);
    }
    return h(userIndex);
  }

  #key(path: string): string {
    let pem = this.#keys.get(path);
    if (pem === undefined) {
      pem = readKeyFile(path);
      this.#keys.set(path, pem);
    }
    return pem;
  }

  #beginGrace(): void {
    this.#phase = 'grace';
  }

  #abort(reason: string): void {
    if (this.#phase === 'done') return;
    this.#aborted ??= { reason, atSec: this.rec.secondsSinceStart(performance.now()) };
    this.#phase = 'grace';
    for (const u of this.#users) u.stop(reason);
  }

  #complete(): void {
    if (this.#phase === 'done') return;
    if (this.#users.size > 0) {
      // Users that did not end within the close grace: their sockets are ended here and counted.
      this.#aborted ??= { reason: 'users still running after the graceful stop', atSec: this.rec.secondsSinceStart(performance.now()) };
      for (const u of this.#users) u.terminate();
    }
    this.#phase = 'done';
    clearTimeout(this.#timer);
    if (this.rec.opening > 0) this.rec.outcome('dropped.cancelled', 'handshake pending at end of run', this.rec.opening);
    this.rec.sample(performance.now());
    this.#finish();
  }

  #result(): RunResult {
    const rec = this.rec;
    const o = this.o;
    const config: TargetOptions & Record<string, unknown> = {
      url: o.url,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      closeGraceMs: o.closeGraceMs,
      auth: o.auth,
      origin: o.origin,
      caps: o.caps,
      saturation: o.saturation,
      scenario: o.loaded.file,
      loadModel: this.#model.name,
      durationSec: o.durationSec,
    };
    const r = rec.envelope('scenario', config, this.target, o.saturation ?? DEFAULT_SATURATION_LIMITS, {
      scheduled: rec.sent,
      lost: this.lost,
      aborted: this.#aborted,
    });
    const section: ScenarioSection = {
      file: o.loaded.file,
      users: { started: this.#started, finished: this.#finished, stopped: this.#stopped, failed: this.#failed },
      checks: Object.fromEntries(this.checks),
      errors: Object.fromEntries(this.errors),
      fanout: Object.fromEntries([...this.fanouts].map(([id, f]) => [id, f.summary()])),
    };
    r.scenario = section;
    return r;
  }
}

type ConnectSpec = NonNullable<StepSpec['connect']>;

function* connectSpecs(steps: StepSpec[]): Generator<ConnectSpec> {
  for (const s of steps) {
    if (s.connect) yield s.connect;
    if (s.loop) yield* connectSpecs(s.loop.steps);
  }
}

/** The check a step counts into: its own name, else where it is. */
export function checkName(s: StepSpec, path: (string | number)[]): string | undefined {
  const named = s.expect?.check ?? s.ping?.check;
  if (named !== undefined) return named;
  if (!s.expect && !s.ping) return undefined;
  return s.name ?? showPath(path);
}

function registerChecksAndFanouts(steps: StepSpec[], at: (string | number)[], run: ScenarioRun): void {
  steps.forEach((s, i) => {
    const path = [...at, i];
    const name = checkName(s, path);
    if (name !== undefined && !run.checks.has(name)) run.checks.set(name, { passes: 0, fails: 0 });
    if (s.fanout) {
      const id = s.name ?? showPath(path);
      run.fanouts.set(id, new FanoutTracker(id, s.fanout.sender ?? 0));
    }
    if (s.loop) registerChecksAndFanouts(s.loop.steps, [...path, 'loop', 'steps'], run);
  });
}

function userVars(data: DataRow[], k: number, userIndex: number): Vars {
  const row = data.length > 0 ? data[k % data.length]! : {};
  return { ...row, user: String(userIndex), iter: '0', seq: '0' };
}

function quote(text: string): string {
  const t = redactText(text);
  return t.length > QUOTE_MAX ? `${t.slice(0, QUOTE_MAX)}…` : t;
}

function sameValue(actual: unknown, expected: unknown): boolean {
  if (typeof expected === 'string')
    return actual !== undefined && actual !== null && typeof actual !== 'object' && String(actual) === expected;
  if (expected !== null && typeof expected === 'object') return JSON.stringify(actual) === JSON.stringify(expected);
  return actual === expected;
}

/** One virtual user: a connection (at a time), an inbox of what arrived, and the variables of its steps. */
class VirtualUser {
  readonly #run: ScenarioRun;
  readonly k: number;
  readonly userIndex: number;
  readonly #vars: Vars;
  #ws: WebSocket | undefined;
  #closing = false;
  #closed: { code: number; outcome: string } | undefined;
  readonly #inbox: Received[] = [];
  #wake: (() => void) | undefined;
  #stopReason: string | undefined;
  #seq = 0;

  constructor(run: ScenarioRun, k: number, userIndex: number) {
    this.#run = run;
    this.k = k;
    this.userIndex = userIndex;
    this.#vars = userVars(run.o.loaded.data, k, userIndex);
  }

  async run(): Promise<'finished' | 'stopped' | 'failed'> {
    let end: 'finished' | 'stopped' | 'failed' = 'finished';
    try {
      await this.#steps(this.#run.o.loaded.scenario.steps, ['steps']);
    } catch (err) {
      if (!(err instanceof StepFailed)) {
        // A bug in a step must not take the run down: it is counted and named like any failure.
        this.#run.error(`internal: ${(err as Error).message}`);
      }
      end = 'failed';
    }
    if (this.#stopReason !== undefined) end = 'stopped';
    await this.#closeSocket(this.#stopReason === undefined ? CLOSE.normal : CLOSE.goingAway, 'wsguard scenario complete');
    return end;
  }

  stop(reason: string): void {
    if (this.#stopReason !== undefined) return;
    this.#stopReason = reason;
    this.#wake?.();
    if (this.#ws && !this.#closing) {
      this.#closing = true;
      this.#ws.close(CLOSE.goingAway, 'wsguard scenario stopped');
    }
  }

  terminate(): void {
    this.#ws?.terminate();
  }

  async #steps(steps: StepSpec[], at: (string | number)[]): Promise<void> {
    for (let i = 0; i < steps.length; i++) {
      if (this.#stopReason !== undefined) throw new StepFailed(this.#stopReason);
      const s = steps[i]!;
      const path = [...at, i];
      if (s.connect) await this.#connect(s.connect, path);
      else if (s.send) this.#send(s.send, path);
      else if (s.expect) await this.#expect(s, s.expect, path);
      else if (s.sleep) await this.#sleep(s.sleep);
      else if (s.ping) await this.#ping(s, s.ping, path);
      else if (s.close) await this.#closeSocket(s.close.code ?? CLOSE.normal, s.close.reason ?? '');
      else if (s.loop) {
        const outer = this.#vars.iter;
        for (let it = 0; it < s.loop.count; it++) {
          this.#vars.iter = String(it);
          await this.#steps(s.loop.steps, [...path, 'loop', 'steps']);
        }
        this.#vars.iter = outer!;
      } else if (s.fanout) await this.#fanout(s, s.fanout, path);
      else if (s.flood) await this.#flood(s.flood, path);
    }
  }

  #fail(what: string): never {
    this.#run.error(what);
    throw new StepFailed(what);
  }

  async #connect(spec: ConnectSpec, path: (string | number)[]): Promise<void> {
    const run = this.#run;
    if (this.#ws) await this.#closeSocket(CLOSE.normal, 'wsguard reconnect');
    run.rec.attempt();
    let h: HandshakeAuth;
    try {
      h = await run.handshake(spec, this.#vars, this.userIndex);
    } catch (err) {
      run.rec.failedAttempt('error.TOKEN_MINT', (err as Error).message);
      throw new StepFailed('token');
    }
    const sources = run.o.sourceIps;
    const origin = spec.origin ?? run.o.loaded.scenario.auth?.origin ?? run.o.origin;
    const insecure = spec.insecure ?? run.o.loaded.scenario.auth?.insecure ?? run.o.insecure;
    const r = await connect({
      url: h.url,
      headers: h.headers,
      protocols: h.protocols,
      origin,
      handshakeTimeoutMs: spec.timeout === undefined ? run.o.handshakeTimeoutMs : durationMs(spec.timeout),
      localAddress: sources && sources.length > 0 ? sources[this.k % sources.length] : undefined,
      rejectUnauthorized: insecure ? false : undefined,
    });
    if (!r.ok) {
      run.rec.failedAttempt(r.outcome, r.detail);
      throw new StepFailed(`${showPath(path)}: ${r.outcome}`);
    }
    run.rec.openedSocket(r.connectMs);
    const ws = r.ws;
    this.#ws = ws;
    this.#closing = false;
    this.#closed = undefined;
    this.#inbox.length = 0;
    watchEnd(
      ws,
      () => this.#closing,
      (outcome, code, reason) => {
        run.rec.closed(outcome, reason);
        this.#closed = { code, outcome };
        this.#wake?.();
      },
    );
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const at = performance.now();
      run.rec.received++;
      run.rec.bytesIn += data.length;
      if (this.#inbox.length >= INBOX_MAX) {
        this.#inbox.shift();
        run.error('inbox overflow: message dropped unread');
      }
      this.#inbox.push({ text: data.toString('utf8'), binary: isBinary, at });
      this.#wake?.();
    });
    ws.on('pong', () => this.#wake?.());
    if (this.#stopReason !== undefined) this.stop(this.#stopReason);
  }

  #open(path: (string | number)[], kind: string): WebSocket {
    if (!this.#ws || this.#closed) this.#fail(`${kind} without an open connection (${showPath(path)})`);
    return this.#ws;
  }

  #send(spec: NonNullable<StepSpec['send']>, path: (string | number)[]): void {
    const ws = this.#open(path, 'send');
    this.#vars.seq = String(this.#seq);
    let text = spec.text !== undefined ? render(spec.text, this.#vars) : JSON.stringify(renderJson(spec.json, this.#vars));
    if (spec.size !== undefined && Buffer.byteLength(text) < spec.size) text += 'x'.repeat(spec.size - Buffer.byteLength(text));
    const data = spec.binary ? Buffer.from(text) : text;
    ws.send(data);
    this.#seq++;
    this.#run.rec.sent++;
    this.#run.rec.bytesOut += Buffer.byteLength(text);
  }

  /** Resolves on the next message, close, pong or stop, or after `ms`. */
  #waitEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      this.#wake = done;
    });
  }

  #match(spec: NonNullable<StepSpec['expect']>, m: Received): Vars | undefined {
    let groups: RegExpExecArray | null = null;
    if (spec.regex !== undefined) {
      groups = new RegExp(render(spec.regex, this.#vars, escapeRegex)).exec(m.text);
      if (!groups) return undefined;
    }
    let parsed: unknown;
    if (spec.json !== undefined || Object.values(spec.capture ?? {}).some((c) => typeof c === 'string')) {
      try {
        parsed = JSON.parse(m.text);
      } catch {
        return undefined;
      }
    }
    for (const [path, want] of Object.entries(spec.json ?? {})) {
      if (!sameValue(jsonPath(parsed, path), renderJson(want, this.#vars))) return undefined;
    }
    const captured: Vars = {};
    for (const [name, from] of Object.entries(spec.capture ?? {})) {
      const v = typeof from === 'number' ? groups?.[from] : jsonPath(parsed, from);
      if (v === undefined || v === null) return undefined;
      captured[name] = typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    return captured;
  }

  async #expect(s: StepSpec, spec: NonNullable<StepSpec['expect']>, path: (string | number)[]): Promise<void> {
    this.#open(path, 'expect');
    const name = checkName(s, path)!;
    const deadline = performance.now() + (spec.timeout === undefined ? SCENARIO_DEFAULTS.expectTimeoutMs : durationMs(spec.timeout));
    let last: Received | undefined;
    let skipped = 0;
    for (;;) {
      const m = this.#inbox.shift();
      if (m) {
        const captured = this.#match(spec, m);
        if (captured) {
          Object.assign(this.#vars, captured);
          this.#run.check(name, true);
          return;
        }
        last = m;
        skipped++;
        continue;
      }
      const now = performance.now();
      const why =
        this.#stopReason ?? (this.#closed ? `connection ended (${this.#closed.outcome})` : now >= deadline ? 'timed out' : undefined);
      if (why !== undefined) {
        if (this.#stopReason !== undefined) throw new StepFailed(why);
        this.#run.check(name, false, () => ({
          user: this.userIndex,
          step: showPath(path),
          stepName: s.name,
          reason: `${why}; ${skipped} message(s) did not match`,
          received: last === undefined ? null : quote(last.text),
        }));
        if (spec.continue) return;
        throw new StepFailed(name);
      }
      await this.#waitEvent(deadline - now);
    }
  }

  async #ping(s: StepSpec, spec: NonNullable<StepSpec['ping']>, path: (string | number)[]): Promise<void> {
    const ws = this.#open(path, 'ping');
    const name = checkName(s, path)!;
    let ponged = false;
    const onPong = (): void => {
      ponged = true;
    };
    ws.once('pong', onPong);
    ws.ping();
    const deadline = performance.now() + (spec.timeout === undefined ? SCENARIO_DEFAULTS.pingTimeoutMs : durationMs(spec.timeout));
    while (!ponged && !this.#closed && this.#stopReason === undefined && performance.now() < deadline) {
      await this.#waitEvent(deadline - performance.now());
    }
    ws.off('pong', onPong);
    if (this.#stopReason !== undefined) throw new StepFailed(this.#stopReason);
    this.#run.check(name, ponged, () => ({
      user: this.userIndex,
      step: showPath(path),
      stepName: s.name,
      reason: this.#closed ? `connection ended (${this.#closed.outcome})` : 'no pong within the timeout',
      received: null,
    }));
    if (!ponged) throw new StepFailed(name);
  }

  async #sleep(spec: NonNullable<StepSpec['sleep']>): Promise<void> {
    let ms: number;
    if (spec.fixed !== undefined) ms = durationMs(spec.fixed);
    else if (spec.uniform) {
      const [a, b] = spec.uniform.map(durationMs) as [number, number];
      ms = a + Math.random() * (b - a);
    } else {
      const { mean, stddev } = spec.normal!;
      // Box-Muller; a negative draw is no sleep.
      const z = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
      ms = Math.max(0, durationMs(mean) + z * durationMs(stddev));
    }
    await this.#sleepUntil(performance.now() + ms);
  }

  /** Sleeps until `at` (performance.now() time) unless stopped; a late wake-up is the generator's lag. */
  async #sleepUntil(at: number): Promise<void> {
    while (this.#stopReason === undefined) {
      const now = performance.now();
      if (now >= at) {
        recordMs(this.#run.rec.sendLag, now - at);
        return;
      }
      await new Promise<void>((resolve) => {
        const prev = this.#wake;
        // A message arriving must still wake an expect elsewhere; sleeping only watches for a stop.
        const onStop = (): void => {
          if (this.#stopReason !== undefined) done();
        };
        const done = (): void => {
          clearTimeout(t);
          if (this.#wake === onStop) this.#wake = prev;
          resolve();
        };
        const t = setTimeout(done, at - now);
        this.#wake = onStop;
      });
    }
    throw new StepFailed(this.#stopReason);
  }

  async #fanout(s: StepSpec, spec: NonNullable<StepSpec['fanout']>, path: (string | number)[]): Promise<void> {
    const run = this.#run;
    const tracker = run.fanouts.get(s.name ?? showPath(path))!;
    const ws = this.#open(path, 'fanout');
    const timeoutMs = spec.timeout === undefined ? SCENARIO_DEFAULTS.fanoutTimeoutMs : durationMs(spec.timeout);
    if (this.userIndex === tracker.sender) {
      // Wait (bounded by the timeout) until the receivers are listening, so the first message is not sent into an empty room.
      const want = spec.receivers ?? Math.max(1, run.o.connections ?? 1) - 1;
      const until = performance.now() + timeoutMs;
      while (tracker.listeners < want && performance.now() < until && this.#stopReason === undefined) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, until - performance.now()));
          const off = tracker.onChange(() => {
            clearTimeout(t);
            off();
            resolve();
          });
        });
      }
      const start = performance.now();
      const period = 1000 / spec.rate;
      for (let i = 0; i < spec.count; i++) {
        const intended = start + i * period;
        await this.#sleepUntil(intended);
        if (this.#closed) this.#fail(`fanout sender's connection ended (${this.#closed.outcome})`);
        const text = tracker.message(intended, spec.size);
        ws.send(text);
        this.#seq++;
        run.rec.sent++;
        run.rec.bytesOut += text.length;
      }
      tracker.senderDone = true;
      tracker.notify();
      return;
    }
    tracker.listeners++;
    tracker.notify();
    let got = 0;
    try {
      for (;;) {
        const m = this.#inbox.shift();
        if (m) {
          if (tracker.receive(m.text, epochMs(m.at))) got++;
          if (got >= spec.count) return;
          continue;
        }
        if (this.#stopReason !== undefined) throw new StepFailed(this.#stopReason);
        if (this.#closed) this.#fail(`fanout receiver's connection ended (${this.#closed.outcome})`);
        const now = performance.now();
        if (tracker.senderDone && now >= tracker.lastIntended + timeoutMs) return;
        const off = tracker.onChange(() => this.#wake?.());
        await this.#waitEvent(tracker.senderDone ? tracker.lastIntended + timeoutMs - now : timeoutMs);
        off();
      }
    } finally {
      tracker.listeners--;
    }
  }

  /**
   * flood's per-connection loop as a step: the same payloads and markers (cli/engine/payload.ts), sends
   * paced from intended times, echoes matched by marker and counted into the Recorder's CO-corrected
   * RTT. It sleeps per message rather than batching sends per scheduler tick as FloodRun does, so it
   * is for realistic rates inside a scenario, not for finding a server's ceiling.
   */
  async #flood(spec: NonNullable<StepSpec['flood']>, path: (string | number)[]): Promise<void> {
    const ws = this.#open(path, 'flood');
    const rec = this.#run.rec;
    const payload = createPayloadFactory({ sizeBytes: spec.size, template: spec.template, binary: spec.binary }, this.userIndex);
    const period = 1000 / spec.rate;
    const count = spec.count ?? Math.max(1, Math.floor(durationMs(spec.duration!) / period));
    const echo = spec.echo ?? true;
    const start = performance.now();
    const sentAt = new Map<number, number>();
    const matchEchoes = (): void => {
      for (let m = this.#inbox.shift(); m; m = this.#inbox.shift()) {
        if (!echo) continue;
        const seq = MARKER.exec(m.text);
        const actual = seq ? sentAt.get(Number(seq[1])) : undefined;
        if (actual === undefined) {
          rec.unmatched++;
          continue;
        }
        sentAt.delete(Number(seq![1]));
        rec.roundTrip(m.at - (start + Number(seq![1]) * period), m.at - actual);
      }
    };
    for (let i = 0; i < count; i++) {
      await this.#sleepUntil(start + i * period);
      if (this.#closed) this.#fail(`flood on a connection that ended (${this.#closed.outcome})`);
      const data = payload(i);
      ws.send(data);
      this.#seq++;
      rec.sent++;
      rec.bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      if (echo) sentAt.set(i, performance.now());
      matchEchoes();
    }
    const until = performance.now() + (spec.drain === undefined ? SCENARIO_DEFAULTS.floodDrainMs : durationMs(spec.drain));
    while (sentAt.size > 0 && !this.#closed && this.#stopReason === undefined && performance.now() < until) {
      await this.#waitEvent(until - performance.now());
      matchEchoes();
    }
    this.#run.lost += sentAt.size;
  }

  async #closeSocket(code: number, reason: string): Promise<void> {
    const ws = this.#ws;
    if (!ws) return;
    if (!this.#closed) {
      if (!this.#closing) {
        this.#closing = true;
        ws.close(code, reason);
      }
      const until = performance.now() + this.#run.o.closeGraceMs;
      while (!this.#closed && performance.now() < until) await this.#waitEvent(until - performance.now());
      if (!this.#closed) ws.terminate();
      // terminate() ends the socket at once; its close event follows within a turn or two.
      for (let i = 0; i < 20 && !this.#closed; i++) await this.#waitEvent(50);
    }
    this.#ws = undefined;
  }
}
