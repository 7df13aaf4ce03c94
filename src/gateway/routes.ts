import type { RouteConfig } from '../config/schema.ts';
import { GatewayError } from '../errors.ts';

/** A path that matched a route and is safe to relay. */
export interface RouteMatch {
  kind: 'match';
  route: RouteConfig;
  /** Path the upstream is asked for: the route's upstream path + the client's remainder, byte for byte. */
  upstreamPath: string;
}

/** A path that matched a route's prefix but whose remainder could escape it or be read two ways (400). */
export interface RouteRefusal {
  kind: 'refused';
  route: RouteConfig;
  message: string;
}

export type RouteResult = RouteMatch | RouteRefusal | null;

/**
 * Characters a path may carry raw: RFC 3986 pchar (unreserved, sub-delims, ':' '@') plus '/' and '%'.
 * Anything else (space, '"', '#', '<', '>', '\', '^', '`', '{', '|', '}', controls, non-ASCII) is not
 * valid in a request-target, and WHATWG URL would rewrite some of it (a '\' becomes '/', a '#' starts
 * a fragment that swallows the query), so the upstream would not see what the client sent.
 */
const RAW_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;

/** Percent escapes that decode to a separator or a control: '/', '\', C0 controls, DEL. */
const FORBIDDEN_ESCAPE = /%(?:2f|5c|[01][0-9a-f]|7f)/i;

/**
 * Why a route's remainder (`''` or `/seg/seg…`) is refused, or null when it is safe. Checked per
 * segment after one percent-decoding, with `;params` cut off, because servers differ in whether they
 * decode before resolving dot segments (`%2e%2e`) and in whether `..;x` counts as `..` (Tomcat does).
 */
export function remainderProblem(rest: string): string | null {
  if (rest === '' || rest === '/') return null;
  if (!RAW_PATH.test(rest))
    return 'the path holds a character that is not allowed in a URL path (control, space, backslash, #, non-ASCII…)';
  if (/%(?![0-9a-fA-F]{2})/.test(rest)) return 'the path holds an invalid percent-encoding';
  if (FORBIDDEN_ESCAPE.test(rest)) return 'the path holds an encoded slash, backslash or control character';
  const segments = rest.slice(1).split('/');
  for (const [i, segment] of segments.entries()) {
    // A trailing slash (last segment empty) is ordinary; `//` inside the path is not.
    if (segment === '') {
      if (i < segments.length - 1) return 'the path holds an empty segment (//)';
      continue;
    }
    // The checks above leave only valid escapes of printable characters, so this cannot throw.
    const decoded = decodeURIComponent(segment);
    const name = decoded.split(';')[0];
    if (name === '.' || name === '..') return 'the path holds a dot segment (. or .., in any encoding)';
  }
  return null;
}

/** `/chat/` and `/chat` both mean the segment prefix `/chat`; `/` means every path. */
function segmentPrefix(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Longest-prefix routing on segment boundaries: route `/chat` (or `/chat/`) matches `/chat` and
 * `/chat/…`, never `/chatadmin`. The remainder after the prefix is appended to the upstream URL's
 * path byte for byte, so /ws/notifications/42 on route /ws/ with upstream ws://app/ws/ reaches
 * ws://app/ws/notifications/42; /ws reaches ws://app/ws/. A remainder that could leave the
 * upstream's path (dot segments, encoded slashes, backslashes…) is refused, not normalised.
 */
export function createRouter(routes: readonly RouteConfig[]): (path: string) => RouteResult {
  const table = routes
    .map((route) => {
      const base = new URL(route.upstream).pathname;
      return { route, prefix: segmentPrefix(route.path), base, baseStem: segmentPrefix(base) };
    })
    .sort((a, b) => b.prefix.length - a.prefix.length);
  return (path) => {
    for (const { route, prefix, base, baseStem } of table) {
      if (path !== prefix && !path.startsWith(`${prefix}/`)) continue;
      const rest = path.slice(prefix.length);
      const problem = remainderProblem(rest);
      if (problem) return { kind: 'refused', route, message: problem };
      return { kind: 'match', route, upstreamPath: rest === '' ? base : baseStem + rest };
    }
    return null;
  };
}

/**
 * The URL to dial: the route's upstream with the matched path, then the upstream's own query (if its
 * URL has one) followed by the client's query minus the token. As defence in depth the parsed URL's
 * path must still be exactly what was built, inside the upstream's path; otherwise bad_request.
 */
export function upstreamUrl(match: RouteMatch, relayQuery: string): URL {
  const configured = new URL(match.route.upstream);
  const own = configured.search.slice(1);
  const client = relayQuery.startsWith('?') ? relayQuery.slice(1) : relayQuery;
  const query = [own, client].filter((q) => q !== '').join('&');
  const url = new URL(configured.href);
  url.hash = '';
  url.pathname = match.upstreamPath;
  url.search = query ? `?${query}` : '';
  const stem = segmentPrefix(configured.pathname);
  const inside = url.pathname === configured.pathname || url.pathname.startsWith(`${stem}/`);
  if (url.pathname !== match.upstreamPath || !inside) {
    throw new GatewayError('bad_request', 'the path does not resolve inside the route’s upstream path');
  }
  return url;
}
