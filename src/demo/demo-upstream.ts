import { listen, uws } from '../gateway/uws.ts';

export interface DemoUpstream {
  port: number;
  close(): void;
}

const ROOM = 'demo-room';

/**
 * The built-in upstream for `wsguard serve --demo` (and for a config with no routes): an echo
 * service under /ws/echo/ and a broadcast room under /ws/room/ where every message goes to every
 * member, the sender included. It stands in for the app so that one command shows the whole path.
 */
export async function startDemoUpstream(host = '127.0.0.1', port = 0): Promise<DemoUpstream> {
  const app = uws.App();
  app.ws<{ room: boolean }>('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      res.upgrade(
        { room: req.getUrl().startsWith('/ws/room') },
        req.getHeader('sec-websocket-key'),
        // Select the first offered subprotocol, as a typical app would.
        req.getHeader('sec-websocket-protocol').split(',')[0]!.trim(),
        '',
        context,
      );
    },
    open: (ws) => {
      if (ws.getUserData().room) ws.subscribe(ROOM);
    },
    message: (ws, message, isBinary) => {
      if (ws.getUserData().room) app.publish(ROOM, message, isBinary);
      else ws.send(message, isBinary);
    },
  });
  const bound = await listen(app, host, port);
  return { port: bound.port, close: () => uws.us_listen_socket_close(bound.socket) };
}
