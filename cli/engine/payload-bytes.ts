import { createPayloadFactory, marker, type PayloadSpec } from './payload.ts';

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
  const whole = scratch.subarray(0, size);
  let written = 0;
  return (seq) => {
    const m = marker(seq);
    if (m.length >= size) {
      const s = strings(seq);
      return typeof s === 'string' ? Buffer.from(s) : s;
    }
    // Markers grow with seq on one connection; a shorter one (never in a flood) restores the padding.
    if (m.length < written) scratch.fill(0x78, m.length, written);
    written = scratch.write(m, 0, 'latin1');
    return whole;
  };
}
