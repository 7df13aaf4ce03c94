import { randomFillSync } from 'node:crypto';

/** Writes a 4-byte masking key at `target[at..at+4)`. */
export type MaskSource = (target: Buffer, at: number) => void;

/**
 * RFC 6455 §5.3 requires an unpredictable masking key per frame. Keys are drawn 4 bytes at a time
 * from a block of CSPRNG output, so one randomFillSync call serves 2048 frames. The block is
 * module-level on purpose: it is shared by every lean connection, so a connection that sends one
 * frame does not hold (or refill) 8 KiB of its own.
 */
const pool = Buffer.allocUnsafe(8 * 1024);
let offset = pool.length;

/** The default mask source: keys from the shared CSPRNG block. */
export const csprngMask: MaskSource = (target, at) => {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  target[at] = pool[offset]!;
  target[at + 1] = pool[offset + 1]!;
  target[at + 2] = pool[offset + 2]!;
  target[at + 3] = pool[offset + 3]!;
  offset += 4;
};
