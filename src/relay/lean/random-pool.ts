import { randomFillSync } from 'node:crypto';

/**
 * CSPRNG output drawn in small pieces from one block, so that one randomFillSync call serves 2048
 * masking keys (RFC 6455 §5.3) or 512 Sec-WebSocket-Keys (§4.1): a randomBytes(16) call per upstream
 * dial was 3.7% of the gateway's CPU under upgrade churn (node --cpu-prof, bench/handshake-profile.ts).
 * Module-level on purpose: shared by every lean connection, so one that sends a frame does not hold
 * (or refill) 8 KiB of its own. No byte is handed out twice.
 */
const pool = Buffer.allocUnsafe(8 * 1024);
let offset = pool.length;

/** The offset of `n` fresh bytes in the returned block (n divides the block's length: 4 or 16). */
export function takeRandom(n: 4 | 16): [Buffer, number] {
  if (offset + n > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return [pool, at];
}
