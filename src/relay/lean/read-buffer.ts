/**
 * One read buffer shared by every plain-TCP lean connection (net `onread`). It is module-level on
 * purpose: each read is parsed synchronously before the next read can land in it, and the frame
 * reader copies out whatever must outlive the call (partial frames, fragments, a paused remainder),
 * so no read allocates. TLS sockets read into their own buffers and do not use it.
 */
export const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);
