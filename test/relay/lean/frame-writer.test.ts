import { describe, expect, it } from 'vitest';
import { FrameWriter } from '../../../src/relay/lean/frame-writer.ts';
import { csprngMask, type MaskSource } from '../../../src/relay/lean/mask.ts';
import { parseClientFrame } from '../upstream-servers.ts';

/** The lean leg's frame writer from bytes: a fixed mask source makes every byte predictable. */

const OP = { text: 0x1, binary: 0x2, close: 0x8, pong: 0xa } as const;

const fixedMask: MaskSource = (target, at) => {
  target.set([0x11, 0x22, 0x33, 0x44], at);
};

function recordingWriter(mask: MaskSource = fixedMask) {
  const written: Buffer[] = [];
  // The writer never writes a handed-out region again, so keeping references is what a socket does.
  const writer = new FrameWriter((bytes) => written.push(bytes), mask);
  return { writer, written, all: () => Buffer.concat(written) };
}

describe('lean frame writer', () => {
  it('encodes a masked text frame byte for byte', () => {
    const { writer, all } = recordingWriter();
    writer.encode(OP.text, Buffer.from('abcde'));
    writer.flush();
    const payload = [0x61 ^ 0x11, 0x62 ^ 0x22, 0x63 ^ 0x33, 0x64 ^ 0x44, 0x65 ^ 0x11];
    expect([...all()]).toEqual([0x81, 0x80 | 5, 0x11, 0x22, 0x33, 0x44, ...payload]);
  });

  it.each([
    [0, 6, 0],
    [125, 6, 125],
    [126, 8, 126],
    [65535, 8, 126],
    [65536, 14, 127],
    [300_000, 14, 127],
  ])('encodes a %i-byte payload with a %i-byte header (length field %i)', (length, headerBytes, lengthField) => {
    const payload = Buffer.alloc(length);
    for (let i = 0; i < length; i++) payload[i] = (i * 7) % 256;
    const { writer, all } = recordingWriter();
    writer.encode(OP.binary, payload);
    writer.flush();
    const bytes = all();
    expect(bytes.length).toBe(headerBytes + length);
    expect(bytes[0]).toBe(0x82);
    expect(bytes[1]).toBe(0x80 | lengthField);
    const frame = parseClientFrame(bytes)!;
    expect(frame).toMatchObject({ fin: true, opcode: OP.binary, masked: true, size: bytes.length });
    expect([...frame.mask]).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(frame.payload.equals(payload)).toBe(true);
  });

  it('holds frames until flush() and hands them over as one region, in order', () => {
    const { writer, written } = recordingWriter();
    for (let i = 0; i < 10; i++) writer.encode(OP.text, Buffer.from(String(i)));
    expect(written).toHaveLength(0);
    expect(writer.pendingBytes).toBe(10 * 7);
    writer.flush();
    expect(writer.pendingBytes).toBe(0);
    expect(written).toHaveLength(1);
    const texts: string[] = [];
    for (let rest = written[0]!, f = parseClientFrame(rest); f !== null; rest = rest.subarray(f.size), f = parseClientFrame(rest)) {
      texts.push(f.payload.toString());
    }
    expect(texts).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('hands a burst that outgrows its buffer to the sink early, and never overwrites what it handed out', () => {
    const { writer, written, all } = recordingWriter();
    const frames = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000, i));
    for (const payload of frames) writer.encode(OP.binary, payload);
    expect(written.length).toBeGreaterThan(0); // past the first 1 KiB buffer
    const snapshot = written.map((b) => Buffer.from(b));
    writer.flush();
    expect(written.slice(0, snapshot.length)).toEqual(snapshot);
    let rest = all();
    for (const payload of frames) {
      const frame = parseClientFrame(rest)!;
      expect(frame.payload.equals(payload)).toBe(true);
      rest = rest.subarray(frame.size);
    }
    expect(rest.length).toBe(0);
  });

  it('flush() with nothing encoded writes nothing', () => {
    const { writer, written } = recordingWriter();
    writer.flush();
    expect(written).toHaveLength(0);
  });

  it('encodes close frames: no status as an empty body, a reason cut to 123 bytes', () => {
    const { writer, all } = recordingWriter();
    writer.encodeClose(null, 'ignored');
    writer.encodeClose(4000, 'x'.repeat(200));
    writer.flush();
    const bytes = all();
    const empty = parseClientFrame(bytes)!;
    expect(empty).toMatchObject({ fin: true, opcode: OP.close, size: 6 });
    expect(empty.payload.length).toBe(0);
    const withCode = parseClientFrame(bytes.subarray(empty.size))!;
    expect(withCode.opcode).toBe(OP.close);
    expect(withCode.payload.length).toBe(125);
    expect(withCode.payload.readUInt16BE(0)).toBe(4000);
    expect(withCode.payload.toString('utf8', 2)).toBe('x'.repeat(123));
  });

  it('draws a mask per frame from the default source', () => {
    const { writer, all } = recordingWriter(csprngMask);
    for (let i = 0; i < 64; i++) writer.encode(OP.pong, Buffer.alloc(0));
    writer.flush();
    const masks = new Set<string>();
    let rest = all();
    for (let f = parseClientFrame(rest); f !== null; rest = rest.subarray(f.size), f = parseClientFrame(rest))
      masks.add(f.mask.toString('hex'));
    // 64 keys of 32 random bits: a repeat has a chance of about 5e-7.
    expect(masks.size).toBe(64);
  });
});
