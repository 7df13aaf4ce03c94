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

export interface ProxyRange {
  ip: string;
  family: 'ipv4' | 'ipv6';
  /** Prefix length; undefined for a single address. */
  prefix: number | undefined;
}

/**
 * Parses one server.trustedProxies entry, or says why it is not an address or CIDR. The schema uses
 * this too, so that `config check` refuses exactly what buildTrustList would (BlockList.addSubnet
 * throws a bare RangeError for 10.0.0.0/33).
 */
export function parseProxyRange(entry: string): ProxyRange | string {
  const parts = entry.split('/');
  if (parts.length > 2) return `${entry} is not an IP address or CIDR`;
  const [addr, prefixText] = parts as [string, string | undefined];
  const ip = normalizeIp(addr);
  if (!ip || addr.trim() !== addr) return `${entry} is not an IP address or CIDR`;
  const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { ip, family, prefix: undefined };
  // An IPv4-mapped range (::ffff:10.0.0.0/104) is kept as the IPv4 range it maps, as peers are.
  const mapped = family === 'ipv4' && isIP(addr) === 6 ? 96 : 0;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = Number(prefixText) - mapped;
  if (!/^\d{1,3}$/.test(prefixText) || prefix < 0 || prefix > max) {
    return `${entry}: the prefix length must be ${mapped} to ${max + mapped} for ${family === 'ipv4' && !mapped ? 'IPv4' : 'IPv6'}`;
  }
  return { ip, family, prefix };
}

export function buildTrustList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of cidrs) {
    const range = parseProxyRange(entry);
    if (typeof range === 'string') throw new Error(`server.trustedProxies: ${range}`);
    if (range.prefix === undefined) list.addAddress(range.ip, range.family);
    else list.addSubnet(range.ip, range.prefix, range.family);
  }
  return list;
}

/**
 * One X-Forwarded-For entry as an address. Some proxies write the client's port too
 * (`1.2.3.4:5678`, `[2001:db8::1]:443`); read as-is that is no address, the walk stops at the proxy
 * and every client shares the proxy's limits. A bare IPv6 address is never read as having a port.
 */
export function parseForwardedHop(text: string): string | null {
  const t = text.trim();
  const bracketed = t.match(/^\[([^\]]+)\](?::\d{1,5})?$/);
  if (bracketed) return normalizeIp(bracketed[1]!);
  if (/[[\]]/.test(t)) return null;
  const v4WithPort = t.match(/^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/);
  if (v4WithPort) return isIP(v4WithPort[1]!) === 4 ? v4WithPort[1]! : null;
  return normalizeIp(t);
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
    const hop = parseForwardedHop(hops[i]!);
    // A malformed entry means the chain cannot be followed further: the last trusted hop's view stands.
    if (!hop) return client;
    client = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return client;
}
