import { takeRandom } from './random-pool.ts';

/** Writes a 4-byte masking key at `target[at..at+4)`. */
export type MaskSource = (target: Buffer, at: number) => void;

/** The default mask source (RFC 6455 §5.3: an unpredictable key per frame): keys from the shared CSPRNG block. */
export const csprngMask: MaskSource = (target, at) => {
  const [pool, from] = takeRandom(4);
  target[at] = pool[from]!;
  target[at + 1] = pool[from + 1]!;
  target[at + 2] = pool[from + 2]!;
  target[at + 3] = pool[from + 3]!;
};
