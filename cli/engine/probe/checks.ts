import { createJwtMinter, unsignedToken, type AuthOptions, type JwtSpec } from '../auth.ts';
import { parseMarker, marker } from '../payload.ts';
import { attempt, closeAll, waitClose, type ProbeTarget } from './attempt.ts';

/**
 * Built-in probe checks. Each one provokes a single limit of the target and reports the outcome it
 * observed; the suite compares that with the outcomes the check accepts.
 */
export interface CheckSpec {
  name: string;
  type: CheckType;
  /** Outcome keys that pass: rejected.429, closed.4100, dropped, opened, … */
  expect: string[];
  limit?: number;
  bytes?: number;
  origin?: string;
  /** Messages sent in the burst for message_rate (default limit × 2 + 5). */
  burst?: number;
  headers?: Record<string, string>;
  token?: string;
  /** auth_wrong_aud: the audience the target requires (the check signs a different one). */
  audience?: string;
}

export type CheckType =
  'connect' | 'conn_limit' | 'message_rate' | 'auth_missing' | 'auth_expired' | 'auth_wrong_aud' | 'auth_alg_none' | 'origin' | 'oversize';

export interface CheckResult {
  name: string;
  type: CheckType;
  ok: boolean;
  expected: string[];
  observed: string;
  detail: string;
  durationMs: number;
}

export interface CheckContext {
  target: ProbeTarget;
  /** Signing settings of a valid token, for the expired / wrong-audience variants. */
  jwt?: JwtSpec;
}

type Runner = (c: CheckSpec, ctx: CheckContext) => Promise<{ observed: string; detail: string }>;

function withoutToken(auth: AuthOptions | undefined): AuthOptions {
  return { headers: auth?.headers, subprotocols: auth?.subprotocols };
}

function withToken(auth: AuthOptions | undefined, token: string): AuthOptions {
  return { ...withoutToken(auth), token, tokenIn: auth?.tokenIn, queryParam: auth?.queryParam, subprotocolPrefix: auth?.subprotocolPrefix };
}

async function single(ctx: CheckContext, over: Parameters<typeof attempt>[1]): Promise<{ observed: string; detail: string }> {
  const a = await attempt(ctx.target, over);
  await closeAll([a.ws]);
  return { observed: a.outcome, detail: a.detail };
}

function needJwt(ctx: CheckContext, type: string): JwtSpec {
  if (!ctx.jwt) throw new Error(`${type} needs token signing settings (--jwt-alg and its key)`);
  return ctx.jwt;
}

const RUNNERS: Readonly<Record<CheckType, Runner>> = {
  connect: (c, ctx) =>
    single(ctx, {
      origin: c.origin,
      auth:
        c.token !== undefined
          ? withToken(ctx.target.auth, c.token)
          : c.headers
            ? { ...ctx.target.auth, headers: { ...ctx.target.auth?.headers, ...c.headers } }
            : undefined,
    }),

  // Open `limit` connections, then one more: the extra one must be refused.
  conn_limit: async (c, ctx) => {
    const limit = c.limit ?? 5;
    const held = [];
    try {
      for (let i = 0; i < limit; i++) {
        const a = await attempt(ctx.target, { userIndex: i });
        held.push(a.ws);
        if (a.outcome !== 'opened')
          return { observed: `early:${a.outcome}`, detail: `connection ${i + 1} of ${limit} was refused before the limit (${a.outcome})` };
      }
      const extra = await attempt(ctx.target, { userIndex: limit });
      held.push(extra.ws);
      return { observed: extra.outcome, detail: extra.detail };
    } finally {
      await closeAll(held);
    }
  },

  // Send a burst above the limit on one connection: messages beyond it must be dropped, or the
  // connection closed with a policy/rate code.
  message_rate: async (c, ctx) => {
    const limit = c.limit ?? 60;
    const burst = c.burst ?? limit * 2 + 5;
    const a = await attempt(ctx.target);
    if (!a.ws) return { observed: `early:${a.outcome}`, detail: 'could not open a connection' };
    const ws = a.ws;
    const echoed = new Set<number>();
    let onEcho: (() => void) | undefined;
    ws.on('message', (d: Buffer) => {
      const seq = parseMarker(d);
      if (seq >= 0) echoed.add(seq);
      onEcho?.();
    });
    // "Fewer echoes than sent" only means "dropped" if the target echoes at all: check that first,
    // with a message that also counts against the limit.
    const echoing = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1_000);
      onEcho = () => {
        clearTimeout(timer);
        resolve(true);
      };
      ws.send(`${marker(0)}probe`);
    });
    onEcho = undefined;
    if (!echoing) {
      await closeAll([ws]);
      return { observed: 'no_echo', detail: 'the target did not echo a first message within 1 s; message_rate needs an echo endpoint' };
    }
    // Long enough for a server to count the burst and close; short enough to keep a suite quick.
    const closed = waitClose(ws, 1_000);
    for (let i = 1; i < burst && ws.readyState === ws.OPEN; i++) ws.send(`${marker(i)}probe`);
    const end = await closed;
    await closeAll([ws]);
    if (end) return { observed: end.outcome, detail: `${echoed.size} of ${burst} echoed before close; reason ${end.detail}` };
    return echoed.size < burst
      ? { observed: 'dropped', detail: `${echoed.size} of ${burst} burst messages echoed (limit ${limit})` }
      : { observed: 'all_delivered', detail: `all ${burst} burst messages echoed (limit ${limit})` };
  },

  auth_missing: (_c, ctx) => single(ctx, { auth: withoutToken(ctx.target.auth) }),

  auth_expired: async (_c, ctx) => {
    const jwt = needJwt(ctx, 'auth_expired');
    const token = await createJwtMinter({ ...jwt, expSec: -120 })(0);
    return single(ctx, { auth: withToken(ctx.target.auth, token) });
  },

  auth_wrong_aud: async (c, ctx) => {
    const jwt = needJwt(ctx, 'auth_wrong_aud');
    const claims = JSON.parse((jwt.claimsTemplate ?? '{"sub":"user-{{i}}"}').replaceAll('{{i}}', '0')) as Record<string, unknown>;
    claims.aud = c.audience === 'wsguard-probe-wrong-audience' ? 'wsguard-probe-other-audience' : 'wsguard-probe-wrong-audience';
    const token = await createJwtMinter({ ...jwt, claimsTemplate: JSON.stringify(claims) })(0);
    return single(ctx, { auth: withToken(ctx.target.auth, token) });
  },

  auth_alg_none: (_c, ctx) => {
    const claims = ctx.jwt
      ? (JSON.parse((ctx.jwt.claimsTemplate ?? '{"sub":"user-0"}').replaceAll('{{i}}', '0')) as Record<string, unknown>)
      : { sub: 'user-0' };
    const token = unsignedToken({ ...claims, exp: Math.floor(Date.now() / 1000) + 300 });
    return single(ctx, { auth: withToken(ctx.target.auth, token) });
  },

  origin: (c, ctx) => single(ctx, { origin: c.origin ?? 'https://wsguard-probe.invalid' }),

  // One message one byte over the limit must close the connection with 1009 (RFC 6455 §7.4.1).
  oversize: async (c, ctx) => {
    const bytes = c.bytes ?? 1024 * 1024 + 1;
    const a = await attempt(ctx.target);
    if (!a.ws) return { observed: `early:${a.outcome}`, detail: 'could not open a connection' };
    const closed = waitClose(a.ws, 1_000);
    a.ws.send(Buffer.alloc(bytes, 0x61));
    const end = await closed;
    await closeAll([a.ws]);
    return end
      ? { observed: end.outcome, detail: end.detail }
      : { observed: 'opened', detail: `a ${bytes}-byte message did not close the connection` };
  },
};

export const CHECK_TYPES = Object.keys(RUNNERS) as CheckType[];

export async function runCheck(c: CheckSpec, ctx: CheckContext): Promise<CheckResult> {
  const started = performance.now();
  let observed: string;
  let detail: string;
  try {
    ({ observed, detail } = await RUNNERS[c.type](c, ctx));
  } catch (err) {
    // A check that cannot run (missing signing key, bad config) fails with the reason, it does not crash the suite.
    observed = 'check_error';
    detail = (err as Error).message;
  }
  return {
    name: c.name,
    type: c.type,
    ok: c.expect.includes(observed),
    expected: c.expect,
    observed,
    detail,
    durationMs: Math.round(performance.now() - started),
  };
}
