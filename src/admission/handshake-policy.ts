import { GatewayError } from '../errors.ts';
import type { AdmissionPolicy } from './policy.ts';

/** RFC 6455 §4.2.1: a GET with Upgrade: websocket, Connection: Upgrade, a 16-byte key and version 13. */
export function handshakePolicy(): AdmissionPolicy {
  return {
    name: 'handshake',
    dryRun: false,
    check({ request: { method, headers } }) {
      if (method !== 'get') throw new GatewayError('bad_request', 'a WebSocket handshake must be a GET');
      if (!/(^|,)\s*websocket\s*(,|$)/i.test(headers['upgrade'] ?? '')) {
        throw new GatewayError('bad_request', 'missing Upgrade: websocket');
      }
      if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers['connection'] ?? '')) {
        throw new GatewayError('bad_request', 'missing Connection: Upgrade');
      }
      const key = headers['sec-websocket-key'] ?? '';
      if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new GatewayError('bad_request', 'Sec-WebSocket-Key must be 16 bytes in base64');
      if ((headers['sec-websocket-version'] ?? '').trim() !== '13') {
        throw new GatewayError('unsupported_version', 'only Sec-WebSocket-Version 13 is supported');
      }
    },
  };
}
