import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.ts';
import { clampReason, CLOSE, clientCloseToUpstream, STANDARD_CLOSE_CODES, upstreamCloseToClient } from '../../src/relay/close-codes.ts';
import { CLOSE_CODES } from '../../src/telemetry/names.ts';

/** RFC 6455 §7.4.1: these are reported by an endpoint, never sent in a close frame. */
const NEVER_ON_THE_WIRE = [CLOSE.noStatus, CLOSE.abnormal, CLOSE.tlsFailure];

describe('close-code mapping between the legs', () => {
  it('relays every sendable code unchanged, both ways', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      expect(clientCloseToUpstream(code), `client ${code}`).toBe(code);
      expect(upstreamCloseToClient(code), `upstream ${code}`).toBe(code);
    }
  });

  it('never puts 1005, 1006 or 1015 on the wire', () => {
    for (const code of NEVER_ON_THE_WIRE) {
      expect(NEVER_ON_THE_WIRE).not.toContain(clientCloseToUpstream(code));
      expect(NEVER_ON_THE_WIRE).not.toContain(upstreamCloseToClient(code));
    }
    // No status → normal; a vanished client → going away; a vanished upstream → bad gateway.
    expect(clientCloseToUpstream(CLOSE.noStatus)).toBe(CLOSE.normal);
    expect(upstreamCloseToClient(CLOSE.noStatus)).toBe(CLOSE.normal);
    expect(clientCloseToUpstream(CLOSE.abnormal)).toBe(CLOSE.goingAway);
    expect(upstreamCloseToClient(CLOSE.abnormal)).toBe(CLOSE.badGateway);
    expect(upstreamCloseToClient(CLOSE.tlsFailure)).toBe(CLOSE.badGateway);
  });

  it('replaces a code no endpoint may send: protocol error towards the upstream, internal error towards the client', () => {
    for (const code of [0, 999, 1004, 1016, 2999, 5000]) {
      expect(clientCloseToUpstream(code), `client ${code}`).toBe(CLOSE.protocolError);
      expect(upstreamCloseToClient(code), `upstream ${code}`).toBe(CLOSE.internalError);
    }
  });

  it('clamps a reason to 123 bytes of UTF-8 without splitting a character', () => {
    expect(clampReason('short')).toBe('short');
    const clamped = clampReason('€'.repeat(60));
    expect(Buffer.byteLength(clamped)).toBeLessThanOrEqual(123);
    expect(clamped).toBe('€'.repeat(41));
  });
});

describe('close codes as a metric label', () => {
  it('keeps every code the gateway sends or names, and the standard ones, as their own value', () => {
    for (const info of Object.values(ERROR_CODES)) expect(CLOSE_CODES).toContain(info.closeCode);
    for (const code of [...Object.values(CLOSE), ...STANDARD_CLOSE_CODES]) expect(CLOSE_CODES).toContain(code);
    expect(new Set(CLOSE_CODES).size).toBe(CLOSE_CODES.length);
    // A client may send any 3000–4999 code: those stay out of the label set (folded into `other`).
    expect(CLOSE_CODES).not.toContain(3999);
    expect(CLOSE_CODES.length).toBeLessThan(40);
  });
});
