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
    // Header values cannot carry CR/LF; a claim that would need them is dropped rather than mangled.
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (!/[\r\n]/.test(text)) out[header.toLowerCase()] = text;
  }
  return out;
}
