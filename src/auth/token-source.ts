/**
 * Where a client's token may travel, in the order we look: `Authorization: Bearer`, a
 * Sec-WebSocket-Protocol entry with the configured prefix (browsers cannot set headers), then the
 * query parameter. Whatever carried it is removed before the handshake is relayed, so the token is
 * never echoed, forwarded upstream nor left in a URL that the app might log.
 */
export interface TokenSource {
  token: string | null;
  /** Subprotocols to offer the upstream: the client's list minus token-bearing entries. */
  protocols: string[];
  /** The query string to relay (leading '?' included when not empty), the token parameter removed. */
  query: string;
  /** A token entry was offered as a subprotocol (whether or not another source carried the token). */
  tokenInSubprotocol: boolean;
  /** The client offered the marker entry (auth.subprotocolMarker): the gateway may select it. */
  markerOffered: boolean;
}

export function extractToken(
  authorization: string,
  protocolHeader: string,
  rawQuery: string,
  options: { queryParam: string; subprotocolPrefix: string; subprotocolMarker: string },
): TokenSource {
  let token: string | null = null;
  const bearer = authorization.match(/^Bearer\s+(\S+)\s*$/i);
  if (bearer) token = bearer[1]!;

  const protocols: string[] = [];
  let tokenInSubprotocol = false;
  let markerOffered = false;
  for (const entry of protocolHeader.split(',')) {
    const p = entry.trim();
    if (!p) continue;
    if (p.startsWith(options.subprotocolPrefix)) {
      tokenInSubprotocol = true;
      token ??= p.slice(options.subprotocolPrefix.length) || null;
      continue;
    }
    // The marker is wsguard's, not the app's: never offered upstream.
    if (p === options.subprotocolMarker) {
      markerOffered = true;
      continue;
    }
    protocols.push(p);
  }

  // Only the token's own parameter is cut out; the rest of the query is relayed byte for byte.
  const kept: string[] = [];
  for (const pair of rawQuery ? rawQuery.split('&') : []) {
    const eq = pair.indexOf('=');
    const key = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
    if (key === options.queryParam) {
      token ??= decodeComponent(eq < 0 ? '' : pair.slice(eq + 1)) || null;
      continue;
    }
    kept.push(pair);
  }
  return { token, protocols, query: kept.length ? `?${kept.join('&')}` : '', tokenInSubprotocol, markerOffered };
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    // Malformed percent-encoding: compare the raw text, which cannot equal a well-formed name.
    return text;
  }
}
