import type { AdmissionContext } from '../admission/context.ts';
import type { Config } from '../config/schema.ts';

/**
 * What the upstream learns about the client, through headers it can trust because the gateway sets
 * them: incoming X-Forwarded-* and claim headers never pass through, the token never does (it was
 * cut out of the query and the subprotocols, and Authorization is not forwarded).
 */
export function buildUpstreamHeaders(ctx: AdmissionContext, config: Config): Record<string, string> {
  const { headers } = ctx.request;
  const out: Record<string, string> = {};
  for (const name of config.upstream.forwardHeaders) {
    const value = headers[name.toLowerCase()];
    if (value !== undefined) out[name.toLowerCase()] = value;
  }
  if (headers['origin'] !== undefined) out['origin'] = headers['origin'];
  out['x-forwarded-for'] = ctx.clientIp;
  const fromTrustedProxy = ctx.clientIp !== ctx.request.peerIp;
  out['x-forwarded-proto'] = (fromTrustedProxy && headers['x-forwarded-proto']) || 'http';
  if (headers['host'] !== undefined) out['x-forwarded-host'] = headers['host'];
  for (const [header, claim] of Object.entries(config.auth.claimHeaders)) {
    const value = ctx.claims?.[claim];
    if (value === undefined || value === null) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    out[header.toLowerCase()] = encodeClaimValue(text);
  }
  return out;
}

/** Bytes a claim header carries as they are: visible ASCII except `%` (RFC 9110 §5.5 field-vchar). */
const PLAIN_CLAIM = /^[\x21-\x24\x26-\x7e]*$/;

/**
 * A claim value as a header value: UTF-8, with every byte outside visible ASCII, and `%` itself,
 * percent-encoded (RFC 3986 §2.1), so `decodeURIComponent` always gives the claim back. Raw UTF-8
 * went out as is on the lean leg and made Node's http (the `ws` leg) refuse every dial; CR/LF could
 * split the request. Plain values (ids, emails) are unchanged.
 */
export function encodeClaimValue(text: string): string {
  if (PLAIN_CLAIM.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
