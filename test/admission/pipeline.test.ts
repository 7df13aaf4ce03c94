import { describe, expect, it } from 'vitest';
import { AttemptStop } from '../../src/admission/attempt-stop.ts';
import type { AdmissionContext } from '../../src/admission/context.ts';
import { releaseReservations, runAdmission, storeOutage } from '../../src/admission/pipeline.ts';
import type { AdmissionPolicy } from '../../src/admission/policy.ts';
import { GatewayError } from '../../src/errors.ts';
import { createNoopObserver, type GatewayObserver } from '../../src/telemetry/observer.ts';
import { admissionContext } from '../helpers/admission-context.ts';

const context = (stop: AttemptStop = new AttemptStop()): AdmissionContext => admissionContext({ stop });

function recorder(): { observer: GatewayObserver; rejected: string[] } {
  const rejected: string[] = [];
  return {
    observer: { ...createNoopObserver(), rejected: (_route, reason, decision) => rejected.push(`${reason}:${decision}`) },
    rejected,
  };
}

/** A policy that logs its run into `ran` and then does what `then` says. */
function policy(
  name: string,
  ran: string[],
  then: () => void | Promise<void> = () => {},
  extra: Partial<AdmissionPolicy> = {},
): AdmissionPolicy {
  return {
    name,
    dryRun: false,
    check() {
      ran.push(name);
      return then();
    },
    ...extra,
  };
}

describe('runAdmission', () => {
  it('runs the policies in order, sync and async alike, and admits when none rejects', async () => {
    const ran: string[] = [];
    const result = await runAdmission(
      [policy('a', ran), policy('b', ran, async () => {}), policy('c', ran)],
      context(),
      createNoopObserver(),
    );
    expect(result).toEqual({ verdict: 'admitted' });
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('stops at the first rejection: later policies do not run, and the deciding policy is named', async () => {
    const ran: string[] = [];
    const { observer, rejected } = recorder();
    const result = await runAdmission(
      [
        policy('origin', ran, () => {
          throw new GatewayError('origin', 'nope');
        }),
        policy('auth', ran),
      ],
      context(),
      observer,
    );
    expect(result).toMatchObject({ verdict: 'rejected', policy: 'origin', error: { code: 'origin' } });
    expect(ran).toEqual(['origin']);
    // The enforced rejection is the caller's to count (it may still be answered in close mode).
    expect(rejected).toEqual([]);
  });

  it('counts a dry-run rejection as dry_run and goes on', async () => {
    const ran: string[] = [];
    const { observer, rejected } = recorder();
    const deny = () => {
      throw new GatewayError('conn_limit', 'full');
    };
    const result = await runAdmission([policy('conn_limit', ran, deny, { dryRun: true }), policy('auth', ran)], context(), observer);
    expect(result).toEqual({ verdict: 'admitted' });
    expect(ran).toEqual(['conn_limit', 'auth']);
    expect(rejected).toEqual(['conn_limit:dry_run']);
  });

  it("maps a throw that is not a GatewayError through the policy's outage(), else to internal", async () => {
    const boom = () => {
      throw new Error('ECONNRESET');
    };
    const store = await runAdmission([policy('attempt_limit', [], boom, { outage: storeOutage })], context(), createNoopObserver());
    expect(store).toMatchObject({ verdict: 'rejected', error: { code: 'store_unavailable', status: 503, retryAfterMs: 5_000 } });
    const other = await runAdmission([policy('auth', [], boom)], context(), createNoopObserver());
    expect(other).toMatchObject({ verdict: 'rejected', error: { code: 'internal' } });
  });

  it('runs no further policy once the signal is aborted during a wait, and reports the abort instead of a verdict', async () => {
    const ran: string[] = [];
    const stop = new AttemptStop();
    const ctx = context(stop);
    const slow = policy('attempt_limit', ran, async () => {
      stop.stop();
      ctx.reservations.attempt = () => ran.push('attempt released');
    });
    const result = await runAdmission([slow, policy('conn_limit', ran), policy('auth', ran)], ctx, createNoopObserver());
    expect(result).toEqual({ verdict: 'aborted' });
    expect(ran).toEqual(['attempt_limit']);
    // A reservation taken by the policy that was waiting is left for the caller to give back.
    releaseReservations(ctx);
    expect(ran).toEqual(['attempt_limit', 'attempt released']);
  });

  it('reports an abort rather than a rejection that lost the race with it', async () => {
    const stop = new AttemptStop();
    const result = await runAdmission(
      [
        policy('auth', [], async () => {
          stop.stop();
          throw new GatewayError('auth', 'bad token');
        }),
      ],
      context(stop),
      createNoopObserver(),
    );
    expect(result).toEqual({ verdict: 'aborted' });
  });

  it('runs nothing for an attempt aborted before admission started', async () => {
    const ran: string[] = [];
    const stop = new AttemptStop();
    stop.stop();
    expect(await runAdmission([policy('handshake', ran)], context(stop), createNoopObserver())).toEqual({ verdict: 'aborted' });
    expect(ran).toEqual([]);
  });
});

describe('runAdmission without waits', () => {
  it('decides synchronously while no policy returns a Promise, and continues asynchronously after one that does', async () => {
    const ran: string[] = [];
    const deny = () => {
      throw new GatewayError('attempt_limit', 'over');
    };
    const sync = runAdmission(
      [policy('origin', ran), policy('attempt_limit', ran, deny), policy('auth', ran)],
      context(),
      createNoopObserver(),
    );
    expect(sync).not.toBeInstanceOf(Promise);
    expect(sync).toMatchObject({ verdict: 'rejected', policy: 'attempt_limit' });
    expect(runAdmission([policy('origin', ran)], context(), createNoopObserver())).toEqual({ verdict: 'admitted' });

    ran.length = 0;
    const waits = runAdmission(
      [policy('origin', ran), policy('store', ran, async () => {}), policy('auth', ran, deny)],
      context(),
      createNoopObserver(),
    );
    expect(waits).toBeInstanceOf(Promise);
    // The policies before the wait ran at once; the ones after it only once it settled.
    expect(ran).toEqual(['origin', 'store']);
    expect(await waits).toMatchObject({ verdict: 'rejected', policy: 'auth' });
    expect(ran).toEqual(['origin', 'store', 'auth']);
  });

  it('maps a rejected wait like a throw: outage, dry run, then the rest of the chain', async () => {
    const ran: string[] = [];
    const { observer, rejected } = recorder();
    const down = () => Promise.reject(new Error('ECONNREFUSED'));
    const outage = await runAdmission(
      [policy('attempt_limit', ran, down, { outage: storeOutage }), policy('auth', ran)],
      context(),
      observer,
    );
    expect(outage).toMatchObject({ verdict: 'rejected', policy: 'attempt_limit', error: { code: 'store_unavailable' } });
    expect(ran).toEqual(['attempt_limit']);
    const full = () => Promise.reject(new GatewayError('conn_limit', 'full'));
    const dry = await runAdmission([policy('conn_limit', ran, full, { dryRun: true }), policy('auth', ran)], context(), observer);
    expect(dry).toEqual({ verdict: 'admitted' });
    expect(ran).toEqual(['attempt_limit', 'conn_limit', 'auth']);
    expect(rejected).toEqual(['conn_limit:dry_run']);
  });
});

describe('AttemptStop', () => {
  it('aborts its signal once at stop(), and hands out an already aborted one when asked after it', () => {
    const early = new AttemptStop();
    const signal = early.signal;
    expect(signal.aborted).toBe(false);
    let heard = 0;
    signal.addEventListener('abort', () => heard++);
    early.stop();
    early.stop();
    expect([early.stopped, signal.aborted, heard]).toEqual([true, true, 1]);
    // The same signal every time.
    expect(early.signal).toBe(signal);

    const late = new AttemptStop();
    late.stop();
    expect(late.stopped).toBe(true);
    expect(late.signal.aborted).toBe(true);
  });
});

describe('releaseReservations', () => {
  function reserved(): { ctx: AdmissionContext; released: string[] } {
    const ctx = context();
    const released: string[] = [];
    ctx.reservations.slot = () => released.push('slot');
    ctx.reservations.attempt = () => released.push('attempt');
    return { ctx, released };
  }

  it('keeps the attempt of a client at fault and gives back the slot', () => {
    const { ctx, released } = reserved();
    releaseReservations(ctx, new GatewayError('auth', 'bad token'));
    expect(released).toEqual(['slot']);
  });

  it('gives both back for a limit, a gateway or upstream fault, and an abort (no error)', () => {
    for (const error of [
      new GatewayError('conn_limit', 'x'),
      new GatewayError('upstream_unavailable', 'x'),
      new GatewayError('draining', 'x'),
      undefined,
    ]) {
      const { ctx, released } = reserved();
      releaseReservations(ctx, error);
      expect(released, error?.code ?? 'abort').toEqual(['slot', 'attempt']);
    }
  });

  it('releases each reservation once however often it is called', () => {
    const { ctx, released } = reserved();
    releaseReservations(ctx);
    releaseReservations(ctx);
    expect(released).toEqual(['slot', 'attempt']);
  });
});
