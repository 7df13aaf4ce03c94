import { describe, expect, it } from 'vitest';
import { dialLeanUpstream } from '../../../src/relay/lean/dial.ts';
import { MAX_FRAGMENTS } from '../../../src/relay/lean/frame-reader.ts';
import { acceptResponse, dialRecorded, onClientFrames, serverFrame, startRawServer, trackServers, waitFor } from '../upstream-servers.ts';

const track = trackServers();

const OP = { continuation: 0x0, binary: 0x2, close: 0x8 } as const;

describe('lean leg: a message of endless zero-length continuation frames', () => {
  it('fails the leg with 1008 once the message passes the fragment cap, and the upstream is told 1008', async () => {
    // Before the cap the fragment list grew by one Buffer per empty frame for as long as the
    // upstream kept sending: the leg never closed.
    const batch = Buffer.concat(Array.from({ length: 256 }, () => serverFrame(OP.continuation, '', { fin: false })));
    let framesSent = 0;
    let toldCode: number | null = null;
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(Buffer.concat([Buffer.from(acceptResponse(req.key)), serverFrame(OP.binary, 'x', { fin: false })]));
        onClientFrames(socket, (frame) => {
          if (frame.opcode === OP.close) toldCode = frame.payload.readUInt16BE(0);
        });
        // Keeps sending, paced by the socket's own backpressure, until the leg answers or ends TCP.
        const pump = () => {
          while (toldCode === null && !socket.destroyed && !socket.writableEnded) {
            framesSent += 256;
            if (!socket.write(batch)) return void socket.once('drain', pump);
          }
        };
        socket.on('end', () => socket.end());
        pump();
      }),
    );
    const h = await dialRecorded(dialLeanUpstream, { url: server.url });
    await waitFor(() => h.closes.length === 1, 5000, 'the leg to close');
    expect(h.closes[0]).toMatchObject({ code: 1008, reason: 'too many message fragments', failed: true });
    expect(h.messages).toHaveLength(0);
    await waitFor(() => toldCode !== null, 5000, 'the close frame at the upstream');
    expect(toldCode).toBe(1008);
    // The leg stopped reading and ended TCP: the upstream's socket closes.
    await waitFor(() => server.sockets.size === 0, 5000, 'the upstream socket to close');
    expect(framesSent).toBeGreaterThan(MAX_FRAGMENTS);
  });
});
