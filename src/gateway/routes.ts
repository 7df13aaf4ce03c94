import type { RouteConfig } from '../config/schema.ts';

export interface RouteMatch {
  route: RouteConfig;
  /** Upstream URL for this request, without query. */
  upstreamBase: string;
}

/**
 * Longest-prefix routing. The part of the client path after the route's prefix is appended to the
 * upstream URL's path, so /ws/notifications/42 on route /ws/notifications/ reaches
 * ws://app/ws/notifications/42. A path equal to the prefix minus its trailing slash matches too.
 */
export function createRouter(routes: readonly RouteConfig[]): (path: string) => RouteMatch | null {
  const sorted = [...routes].sort((a, b) => b.path.length - a.path.length);
  const bases = new Map(sorted.map((r) => [r, r.upstream.split('?')[0]!] as const));
  return (path) => {
    for (const route of sorted) {
      let rest: string;
      if (path.startsWith(route.path)) rest = path.slice(route.path.length);
      else if (route.path.endsWith('/') && path === route.path.slice(0, -1)) rest = '';
      else continue;
      const base = bases.get(route)!;
      return { route, upstreamBase: rest && base.endsWith('/') ? base + rest : base + (rest ? `/${rest}` : '') };
    }
    return null;
  };
}
