import { GatewayError } from '../errors.ts';
import type { AdmissionPolicy } from './policy.ts';

/**
 * Headers that decide admission or identify the handshake, and that RFC 9110 and RFC 6455 allow only
 * once. Two copies mean two parties (a client and a proxy, or a smuggling attempt) disagree about
 * them; judging either copy would let header order pick the answer.
 */
const SINGLETONS: ReadonlySet<string> = new Set([
  'host',
  'origin',
  'authorization',
  'sec-websocket-key',
  'sec-websocket-version',
  'x-forwarded-proto',
  'x-forwarded-host',
  'traceparent',
]);

/** RFC 6455 §4.2.1: a GET with Upgrade: websocket, Connection: Upgrade, a 16-byte key and version 13. */
export function handshakePolicy(): AdmissionPolicy {
  return {
    name: 'handshake',
    dryRun: false,
    check({ request: { method, headers, duplicates } }) {
      if (method !== 'get') throw new GatewayError('bad_request', 'a WebSocket handshake must be a GET');
      const repeated = duplicates.find((name) => SINGLETONS.has(name));
      if (repeated) throw new GatewayError('bad_request', `the ${repeated} header appears more than once`);
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
