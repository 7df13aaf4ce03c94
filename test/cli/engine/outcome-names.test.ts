import { describe, expect, it } from 'vitest';
import { CLOSE_CODE_NAMES, HTTP_STATUS_NAMES } from '../../../cli/engine/outcomes.ts';
import { ERROR_CODES } from '../../../src/errors.ts';
import { CLOSE } from '../../../src/relay/close-codes.ts';

/**
 * The CLI names every status and close code the sidecar can produce, so a report never prints a
 * bare number for one of wsguard's own answers (it lacked 4201 and 404 before this test).
 */
describe('outcome names follow the error catalogue', () => {
  it('names every close code in src/errors.ts and src/relay/close-codes.ts that can reach a client', () => {
    const onTheWire = (code: number) => code !== CLOSE.noStatus && code !== CLOSE.tlsFailure;
    const codes = new Set([...Object.values(ERROR_CODES).map((i) => i.closeCode), ...Object.values(CLOSE)].filter(onTheWire));
    for (const code of codes) expect(CLOSE_CODE_NAMES[code], `close ${code}`).toBeTruthy();
  });

  it('names every HTTP status a handshake can be refused with', () => {
    // 413 belongs to message_too_big, which is only ever a close (1009), never a handshake status.
    const statuses = new Set(
      Object.entries(ERROR_CODES)
        .filter(([code]) => code !== 'message_too_big')
        .map(([, i]) => i.status),
    );
    for (const status of statuses) expect(HTTP_STATUS_NAMES[status], `HTTP ${status}`).toBeTruthy();
  });
});
