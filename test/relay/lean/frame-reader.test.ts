import { describe, expect, it } from 'vitest';
import { FrameReader, MAX_FRAGMENTS, type FrameReaderOptions } from '../../../src/relay/lean/frame-reader.ts';
import { serverFrame } from '../upstream-servers.ts';

/**
 * The lean leg's frame reader from bytes, as `ws` tests its Receiver: no socket, every failure
 * checked for the close code it reports.
 */

const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

type Event =
  | { type: 'message'; data: Buffer; isBinary: boolean }
  | { type: 'ping' | 'pong'; data: Buffer }
  | { type: 'close' | 'error'; code: number; reason: string };

function recordingReader(options: Partial<FrameReaderOptions> = {}, onMessage?: () => void) {
  const events: Event[] = [];
  const reader: FrameReader = new FrameReader(
    {
      // Payloads may be views into the pushed bytes: copied, as the contract asks.
      onMessage: (data, isBinary) => {
        events.push({ type: 'message', data: Buffer.from(data), isBinary });
        onMessage?.();
      },
      onPing: (data) => events.push({ type: 'ping', data: Buffer.from(data) }),
      onPong: (data) => events.push({ type: 'pong', data: Buffer.from(data) }),
      onClose: (code, reason) => events.push({ type: 'close', code, reason }),
      onError: (code, reason) => events.push({ type: 'error', code, reason }),
    },
    { maxPayloadBytes: 1 << 20, ...options },
  );
  return { reader, events };
}

/** Pushes `bytes` whole and returns the events. */
function read(bytes: Buffer, options: Partial<FrameReaderOptions> = {}): Event[] {
  const { reader, events } = recordingReader(options);
  expect(reader.push(bytes)).toBe(bytes.length);
  return events;
}

/** The one error the bytes produce, after whatever came before it. */
function errorOf(bytes: Buffer, options: Partial<FrameReaderOptions> = {}): { code: number; reason: string } {
  const events = read(bytes, options);
  const last = events.at(-1);
  expect(last?.type).toBe('error');
  const { code, reason } = last as { code: number; reason: string };
  return { code, reason };
}

function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code, 0);
  return Buffer.concat([body, Buffer.from(reason)]);
}

describe('lean frame reader: frames of each opcode', () => {
  it('reports a text message', () => {
    expect(read(serverFrame(OP.text, 'hello'))).toEqual([{ type: 'message', data: Buffer.from('hello'), isBinary: false }]);
  });

  it('reports a binary message', () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    expect(read(serverFrame(OP.binary, payload))).toEqual([{ type: 'message', data: payload, isBinary: true }]);
  });

  it('reports empty text and binary messages', () => {
    expect(read(Buffer.concat([serverFrame(OP.text, ''), serverFrame(OP.binary, '')]))).toEqual([
      { type: 'message', data: Buffer.alloc(0), isBinary: false },
      { type: 'message', data: Buffer.alloc(0), isBinary: true },
    ]);
  });

  it('reports a ping and a pong with their application data', () => {
    expect(read(Buffer.concat([serverFrame(OP.ping, 'p1'), serverFrame(OP.pong, 'p2')]))).toEqual([
      { type: 'ping', data: Buffer.from('p1') },
      { type: 'pong', data: Buffer.from('p2') },
    ]);
  });

  it('reports a close frame with its code and reason, and one without a body as 1005', () => {
    expect(read(serverFrame(OP.close, closeBody(1000, 'bye')))).toEqual([{ type: 'close', code: 1000, reason: 'bye' }]);
    expect(read(serverFrame(OP.close, ''))).toEqual([{ type: 'close', code: 1005, reason: '' }]);
  });

  it.each([1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999])('accepts close code %i', (code) => {
    expect(read(serverFrame(OP.close, closeBody(code)))).toEqual([{ type: 'close', code, reason: '' }]);
  });

  it('reports nothing after a close frame, and consumes what follows it', () => {
    const bytes = Buffer.concat([serverFrame(OP.close, closeBody(1000)), serverFrame(OP.text, 'late')]);
    const { reader, events } = recordingReader();
    expect(reader.push(bytes)).toBe(bytes.length);
    expect(reader.stopped).toBe(true);
    expect(events).toEqual([{ type: 'close', code: 1000, reason: '' }]);
  });
});

describe('lean frame reader: payload lengths', () => {
  it.each([
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [200_000, 10],
  ])('reads a %i-byte payload (%i-byte header)', (length, headerBytes) => {
    const payload = Buffer.alloc(length);
    for (let i = 0; i < length; i++) payload[i] = i % 251;
    const frame = serverFrame(OP.binary, payload);
    expect(frame.length).toBe(headerBytes + length);
    expect(read(frame)).toEqual([{ type: 'message', data: payload, isBinary: true }]);
  });

  it('refuses a 64-bit length with the most significant bit set, with 1009', () => {
    const frame = Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]);
    expect(errorOf(frame).code).toBe(1009);
  });
});

describe('lean frame reader: bytes split across reads', () => {
  // A stream with every shape: 7/16/64-bit lengths, a fragmented message with a ping between its
  // fragments, a text message whose UTF-8 code point straddles two fragments, and a close frame.
  const euro = Buffer.from('€', 'utf8');
  const stream = Buffer.concat([
    serverFrame(OP.text, 'one'),
    serverFrame(OP.binary, Buffer.alloc(300, 7)),
    serverFrame(OP.binary, Buffer.alloc(70_000, 9)),
    serverFrame(OP.text, 'frag', { fin: false }),
    serverFrame(OP.ping, 'between'),
    serverFrame(OP.continuation, 'men', { fin: false }),
    serverFrame(OP.continuation, '', { fin: false }),
    serverFrame(OP.continuation, 'ted'),
    serverFrame(OP.text, euro.subarray(0, 1), { fin: false }),
    serverFrame(OP.continuation, euro.subarray(1)),
    serverFrame(OP.close, closeBody(4000, 'done')),
  ]);
  const expected: Event[] = [
    { type: 'message', data: Buffer.from('one'), isBinary: false },
    { type: 'message', data: Buffer.alloc(300, 7), isBinary: true },
    { type: 'message', data: Buffer.alloc(70_000, 9), isBinary: true },
    { type: 'ping', data: Buffer.from('between') },
    { type: 'message', data: Buffer.from('fragmented'), isBinary: false },
    { type: 'message', data: euro, isBinary: false },
    { type: 'close', code: 4000, reason: 'done' },
  ];

  it('reports the same events whole', () => {
    expect(read(stream)).toEqual(expected);
  });

  it('reports the same events fed one byte at a time, from a reused buffer', () => {
    const { reader, events } = recordingReader();
    // One buffer overwritten for every read, as the shared read buffer is: whatever the reader
    // keeps across reads (a split header, fragments, a partial payload) must be copied out.
    const scratch = Buffer.alloc(1);
    for (const byte of stream) {
      scratch[0] = byte;
      if (!reader.absorb(scratch)) expect(reader.push(scratch)).toBe(1);
      scratch[0] = 0xff;
    }
    expect(events).toEqual(expected);
  });

  it.each([2, 3, 7, 1000, 4096])('reports the same events fed in %i-byte slices', (size) => {
    const { reader, events } = recordingReader();
    for (let at = 0; at < stream.length; at += size) {
      const slice = Buffer.from(stream.subarray(at, at + size));
      if (!reader.absorb(slice)) reader.push(slice);
      slice.fill(0xff);
    }
    expect(events).toEqual(expected);
  });

  it('absorb() takes only reads that continue a partial payload without completing it', () => {
    const frame = serverFrame(OP.binary, Buffer.alloc(1000, 3));
    const { reader, events } = recordingReader();
    expect(reader.absorb(frame.subarray(0, 100))).toBe(false); // no payload under way: push() it
    expect(reader.push(frame.subarray(0, 100))).toBe(100);
    expect(reader.absorb(frame.subarray(100, 500))).toBe(true);
    expect(reader.absorb(frame.subarray(500))).toBe(false); // would complete the frame: push() it
    expect(reader.push(frame.subarray(500))).toBe(frame.length - 500);
    expect(events).toEqual([{ type: 'message', data: Buffer.alloc(1000, 3), isBinary: true }]);
  });

  it('pause() from an event stops at the frame boundary; push() reports how far it got', () => {
    const frames = ['a', 'b', 'c'].map((text) => serverFrame(OP.text, text));
    const bytes = Buffer.concat(frames);
    const { reader, events } = recordingReader({}, () => reader.pause());
    expect(reader.push(bytes)).toBe(frames[0]!.length);
    reader.resume();
    expect(reader.push(bytes.subarray(frames[0]!.length))).toBe(frames[1]!.length);
    expect(events.map((e) => (e as { data: Buffer }).data.toString())).toEqual(['a', 'b']);
  });
});

describe('lean frame reader: protocol errors carry their close code', () => {
  it('refuses a masked frame with 1002 (a server must not mask, §5.1)', () => {
    expect(errorOf(serverFrame(OP.text, 'hi', { mask: true }))).toEqual({ code: 1002, reason: 'masked server frame' });
  });

  it.each([1, 2, 4, 7])('refuses RSV bits %i with 1002 (no extension negotiated)', (rsv) => {
    expect(errorOf(serverFrame(OP.text, 'hi', { rsv }))).toEqual({ code: 1002, reason: 'reserved bits set' });
  });

  it.each([0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf])('refuses unknown opcode %i with 1002', (opcode) => {
    expect(errorOf(serverFrame(opcode, 'x'))).toEqual({ code: 1002, reason: `unknown opcode ${opcode}` });
  });

  it.each([OP.ping, OP.pong, OP.close])('refuses control frame %i over 125 bytes with 1002', (opcode) => {
    expect(errorOf(serverFrame(opcode, Buffer.alloc(126)))).toEqual({ code: 1002, reason: 'invalid control frame' });
  });

  it('accepts a control frame of exactly 125 bytes', () => {
    expect(read(serverFrame(OP.ping, Buffer.alloc(125, 1)))).toEqual([{ type: 'ping', data: Buffer.alloc(125, 1) }]);
  });

  it.each([OP.ping, OP.pong, OP.close])('refuses fragmented control frame %i with 1002', (opcode) => {
    expect(errorOf(serverFrame(opcode, '', { fin: false }))).toEqual({ code: 1002, reason: 'invalid control frame' });
  });

  it('refuses a one-byte close body with 1002', () => {
    expect(errorOf(serverFrame(OP.close, Buffer.from([0x03])))).toEqual({ code: 1002, reason: 'close frame with a 1-byte body' });
  });

  it.each([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])('refuses close code %i with 1002', (code) => {
    expect(errorOf(serverFrame(OP.close, closeBody(code)))).toEqual({ code: 1002, reason: `invalid close code ${code}` });
  });

  it('refuses a close reason that is not UTF-8 with 1007', () => {
    const reason = Buffer.from([0xe2, 0x82]); // a truncated code point
    expect(errorOf(serverFrame(OP.close, closeBody(1000, reason)))).toEqual({ code: 1007, reason: 'invalid UTF-8 in a close reason' });
  });

  it('refuses a text message that is not UTF-8 with 1007, single or assembled', () => {
    expect(errorOf(serverFrame(OP.text, Buffer.from([0xc3, 0x28]))).code).toBe(1007);
    const fragmented = Buffer.concat([
      serverFrame(OP.text, Buffer.from([0xe2, 0x82]), { fin: false }),
      serverFrame(OP.continuation, Buffer.from('x')),
    ]);
    expect(errorOf(fragmented)).toEqual({ code: 1007, reason: 'invalid UTF-8 in a text message' });
  });

  it('relays binary that is not UTF-8 as it is', () => {
    const payload = Buffer.from([0xc3, 0x28]);
    expect(read(serverFrame(OP.binary, payload))).toEqual([{ type: 'message', data: payload, isBinary: true }]);
  });

  it.each([OP.text, OP.binary])('refuses a new data message (opcode %i) inside a fragmented one with 1002', (opcode) => {
    const bytes = Buffer.concat([serverFrame(OP.text, 'first', { fin: false }), serverFrame(opcode, 'second')]);
    expect(errorOf(bytes)).toEqual({ code: 1002, reason: 'new message inside a fragmented one' });
  });

  it('refuses a continuation with nothing to continue with 1002, also right after a complete message', () => {
    expect(errorOf(serverFrame(OP.continuation, 'x'))).toEqual({ code: 1002, reason: 'continuation without a message' });
    const afterMessage = Buffer.concat([
      serverFrame(OP.text, 'a', { fin: false }),
      serverFrame(OP.continuation, 'b'),
      serverFrame(OP.continuation, 'c'),
    ]);
    expect(read(afterMessage)).toEqual([
      { type: 'message', data: Buffer.from('ab'), isBinary: false },
      { type: 'error', code: 1002, reason: 'continuation without a message' },
    ]);
  });

  it('refuses a message over maxPayloadBytes with 1009, single or fragmented, before reading its payload', () => {
    // Only the header is given: the reader refuses on the declared length.
    expect(errorOf(serverFrame(OP.binary, Buffer.alloc(101)).subarray(0, 2), { maxPayloadBytes: 100 })).toEqual({
      code: 1009,
      reason: 'message too big',
    });
    expect(read(serverFrame(OP.binary, Buffer.alloc(100)), { maxPayloadBytes: 100 })).toHaveLength(1);
    const fragmented = Buffer.concat([
      serverFrame(OP.binary, Buffer.alloc(60), { fin: false }),
      serverFrame(OP.continuation, Buffer.alloc(41)),
    ]);
    expect(errorOf(fragmented, { maxPayloadBytes: 100 })).toEqual({ code: 1009, reason: 'message too big' });
  });

  it('reports nothing after an error, and consumes what follows it', () => {
    const bytes = Buffer.concat([serverFrame(OP.text, 'ok'), serverFrame(OP.text, 'x', { rsv: 4 }), serverFrame(OP.text, 'late')]);
    const { reader, events } = recordingReader();
    expect(reader.push(bytes)).toBe(bytes.length);
    expect(reader.push(serverFrame(OP.text, 'later'))).toBeGreaterThan(0);
    expect(events.map((e) => e.type)).toEqual(['message', 'error']);
  });
});

describe('lean frame reader: fragments per message', () => {
  const start = serverFrame(OP.binary, 'x', { fin: false });
  const emptyContinuation = serverFrame(OP.continuation, '', { fin: false });
  const end = serverFrame(OP.continuation, 'y');

  it('assembles a message of exactly maxFragments frames, empty ones included', () => {
    const bytes = Buffer.concat([start, emptyContinuation, emptyContinuation, end]);
    expect(read(bytes, { maxFragments: 4 })).toEqual([{ type: 'message', data: Buffer.from('xy'), isBinary: true }]);
  });

  it('fails with 1008 at frame maxFragments + 1, counting zero-length continuations', () => {
    const bytes = Buffer.concat([start, emptyContinuation, emptyContinuation, emptyContinuation, end]);
    expect(errorOf(bytes, { maxFragments: 4 })).toEqual({ code: 1008, reason: 'too many message fragments' });
  });

  it('starts counting again with each message', () => {
    const message = Buffer.concat([start, emptyContinuation, end]);
    expect(read(Buffer.concat([message, message, message]), { maxFragments: 3 }).map((e) => e.type)).toEqual([
      'message',
      'message',
      'message',
    ]);
  });

  it(`by default ends endless zero-length continuations after ${MAX_FRAGMENTS} frames`, () => {
    const { reader, events } = recordingReader();
    reader.push(start);
    let frames = 1;
    while (!reader.stopped && frames < MAX_FRAGMENTS * 10) {
      reader.push(emptyContinuation);
      frames++;
    }
    expect(frames).toBe(MAX_FRAGMENTS + 1);
    expect(events).toEqual([{ type: 'error', code: 1008, reason: 'too many message fragments' }]);
  });
});
