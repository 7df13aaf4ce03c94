import { createPayloadFactory, marker, type PayloadSpec } from './payload.ts';

const MARKER_HEAD = marker(0).slice(0, -2);

/**
 * The fixed-size payload (no template) as bytes written in place: one buffer per connection, the
 * marker written over its head for each message, so the lean client's frame writer masks it
 * straight into its output with no string or Buffer made per message. Byte for byte what
 * createPayloadFactory makes (test/cli/engine/payload-bytes.test.ts). Null for templates, whose
 * parts change length per message: they keep the string factory.
 *
 * The returned view is valid until the next call: the caller sends it before asking for another.
 */
export function createPayloadBytes(spec: PayloadSpec, userIndex: number): ((seq: number) => Buffer) | null {
  if (spec.template !== undefined) return null;
  const size = spec.sizeBytes ?? 64;
  const strings = createPayloadFactory(spec, userIndex);
  const scratch = Buffer.alloc(size, 'x');
  scratch.write(MARKER_HEAD, 0, 'latin1');
  const whole = scratch.subarray(0, size);
  let written = 0;
  return (seq) => {
    let digits = 1;
    for (let p = 10; p <= seq; p *= 10) digits++;
    const end = MARKER_HEAD.length + digits + 1;
    if (end >= size || !Number.isSafeInteger(seq) || seq < 0) {
      const s = strings(seq);
      return typeof s === 'string' ? Buffer.from(s) : s;
    }
    // The marker's digits straight into the buffer: no string per message (garbage collection was 10% of the generator's CPU).
    let v = seq;
    for (let i = end - 2; i >= MARKER_HEAD.length; i--) {
      scratch[i] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    }
    scratch[end - 1] = 0x3b; // ';'
    // Markers grow with seq on one connection; a shorter one (never in a flood) restores the padding.
    if (end < written) scratch.fill(0x78, end, written);
    written = end;
    return whole;
  };
}
