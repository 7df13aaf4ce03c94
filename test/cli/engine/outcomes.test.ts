import { describe, expect, it } from 'vitest';
import { classifyError, describeOutcome, isFailure, OutcomeCounter } from '../../../cli/engine/outcomes.ts';

function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe('outcomes', () => {
  it('names socket, TLS, protocol and handshake failures apart', () => {
    expect(classifyError(errno('ECONNREFUSED')).key).toBe('error.ECONNREFUSED');
    expect(classifyError(errno('EADDRNOTAVAIL')).key).toBe('error.EADDRNOTAVAIL');
    expect(classifyError(errno('DEPTH_ZERO_SELF_SIGNED_CERT')).key).toBe('tls.DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(classifyError(errno('ERR_TLS_CERT_ALTNAME_INVALID')).key).toBe('tls.ERR_TLS_CERT_ALTNAME_INVALID');
    expect(classifyError(errno('WS_ERR_INVALID_CLOSE_CODE')).key).toBe('protocol.WS_ERR_INVALID_CLOSE_CODE');
    expect(classifyError(new Error('Opening handshake has timed out')).key).toBe('error.HANDSHAKE_TIMEOUT');
    expect(classifyError(new Error('Invalid Sec-WebSocket-Accept header')).key).toBe('handshake.bad_accept');
    const odd = classifyError(new Error('something new'));
    expect(odd).toEqual({ key: 'error.UNCLASSIFIED', detail: 'something new' });
  });

  it('describes contract codes and counts failures', () => {
    expect(describeOutcome('closed.4100')).toContain('connection limit');
    expect(describeOutcome('closed.4150')).toContain('reconnect with backoff');
    expect(describeOutcome('rejected.429')).toContain('too many requests');
    expect(isFailure('completed')).toBe(false);
    expect(isFailure('closed.1001')).toBe(false);
    expect(isFailure('closed.1008')).toBe(true);
    const c = new OutcomeCounter();
    c.add('completed');
    c.add('rejected.429', 'x');
    c.add('rejected.429', 'x');
    expect(c.failures()).toBe(2);
    expect(c.detailsJSON()).toEqual({ 'rejected.429': { x: 2 } });
    for (let i = 0; i < 50; i++) c.add('closed.4000', `reason ${i}`);
    expect(Object.keys(c.detailsJSON()['closed.4000']!).length).toBe(8);
  });
});
