import { BlockList, isIP } from 'node:net';

/**
 * Who is the client? The socket peer, unless the peer is a trusted proxy: then X-Forwarded-For is
 * walked right to left and the first address that is not a trusted proxy is the client (the
 * left-most entries are client-supplied and cannot be trusted, RFC 7239 §7.4).
 */

/** Expands an IPv6 text (any form uWS or a header may give) into 8 16-bit groups; null if invalid. */
function ipv6Groups(text: string): number[] | null {
  let s = text;
  const v4 = s.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const octets = v4[2]!.split('.').map(Number);
    s = `${v4[1]}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((g) =>
    /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN,
  );
  return groups.some(Number.isNaN) ? null : groups;
}

/**
 * Canonical text of an address: IPv4 dotted quad (IPv4-mapped IPv6 such as ::ffff:127.0.0.1 or
 * uWS's 0000:…:ffff:7f00:0001 becomes 127.0.0.1), IPv6 lower-case with full groups. null if invalid.
 */
export function normalizeIp(text: string): string | null {
  const t = text.trim().replace(/^\[|\]$/g, '');
  if (isIP(t) === 4) return t;
  const groups = ipv6Groups(t.toLowerCase().split('%')[0]!);
  if (!groups) return null;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
  }
  return groups.map((g) => g.toString(16)).join(':');
}

/** The key per-IP limits count under: the IPv4 address, or the IPv6 prefix (default /64) in CIDR form. */
export function clientKey(ip: string, ipv6PrefixLength: number): string {
  if (isIP(ip) === 4) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  let bits = ipv6PrefixLength;
  const masked = groups.map((g) => {
    const take = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return take === 0 ? 0 : g & (0xffff << (16 - take)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${ipv6PrefixLength}`;
}

export function buildTrustList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [addr, prefix] = entry.split('/');
    const ip = normalizeIp(addr!);
    if (!ip) throw new Error(`server.trustedProxies: ${entry} is not an IP address or CIDR`);
    const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(prefix), family);
  }
  return list;
}

function isTrusted(list: BlockList, ip: string): boolean {
  return list.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
}

/** Resolves the client address from the (normalised) peer and the X-Forwarded-For header. */
export function resolveClientIp(peer: string, forwardedFor: string, trusted: BlockList): string {
  if (!forwardedFor || !isTrusted(trusted, peer)) return peer;
  const hops = forwardedFor.split(',');
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!);
    // A malformed entry means the chain cannot be followed further: the last trusted hop's view stands.
    if (!hop) return client;
    client = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return client;
}
