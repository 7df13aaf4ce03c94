/**
 * Paths under route /ws/ that the gateway refuses with 400 before any upstream dial; shared by the
 * router unit tests and the end-to-end traversal suite.
 */
export const REFUSED_PATHS = [
  '/ws/../admin',
  '/ws/..',
  '/ws/.',
  '/ws/./a',
  '/ws/a/..',
  '/ws/a/../../admin',
  '/ws/../../../internal/debug',
  '/ws/%2e%2e/admin',
  '/ws/%2E%2E/admin',
  '/ws/.%2E/admin',
  '/ws/%2e./admin',
  '/ws/%2e/admin',
  '/ws/..;/admin',
  '/ws/..;x=1/admin',
  '/ws/%2e%2e;/admin',
  '/ws/.;/admin',
  '/ws/..\\admin',
  '/ws/..%5cadmin',
  '/ws/..%5Cadmin',
  '/ws/a%2fb',
  '/ws/a%2F..%2Fadmin',
  '/ws/a%00b',
  '/ws/a%0d%0aX-Injected:%201',
  '/ws/a%1f',
  '/ws/a%7f',
  '/ws/a%7F',
  '/ws//a',
  '/ws/a//b',
  '/ws/%zz',
  '/ws/a%2',
  '/ws/a%',
  '/ws/a\u0000b',
  '/ws/a\tb',
  '/ws/a\u007fb',
  '/ws/a b',
  '/ws/a#/../../admin',
  '/ws/caf\u00e9',
];

/**
 * Whether uWS hands a raw request line with this path to the gateway at all. Measured with uWS 20.30:
 * a raw tab, NUL, space or other C0 control on the request line gets no answer from uWS's parser and
 * never reaches `upgrade`, so those cases are covered by the router's unit tests only.
 */
export function reachesTheGateway(path: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
  return !/[\u0000-\u0020]/.test(path);
}
