import { z } from 'zod';
import { parseProxyRange } from '../admission/client-ip.ts';
import { telemetrySchema } from '../telemetry/config.ts';

/**
 * The one configuration schema. Every option has a default with its unit in its name, and a
 * description that docs/configuration.md is generated from (npm run docs:config; a test keeps the
 * two in step). Defaults follow the reference guide (the Django Channels production setup guide wsguard started from): 5 concurrent connections and 10 connection attempts
 * an hour per IP, 60 messages a minute per connection.
 */

const wsUrl = z.string().refine((v) => URL.canParse(v) && ['ws:', 'wss:'].includes(new URL(v).protocol), 'must be a ws:// or wss:// URL');

const origin = z.string().refine((v) => {
  if (!URL.canParse(v)) return false;
  const u = new URL(v);
  return u.origin === v.replace(/\/$/, '') && u.origin !== 'null';
}, 'must be an origin: scheme://host[:port], with no path');

const cidr = z.string().superRefine((v, ctx) => {
  const range = parseProxyRange(v);
  if (typeof range === 'string')
    ctx.addIssue({ code: 'custom', message: `${range} (expected an IP address or CIDR such as 10.0.0.0/8 or fd00::/8)` });
});

/**
 * Headers the gateway owns on the upstream leg: credentials, the handshake's own headers, and the
 * ones it sets from what it verified (X-Forwarded-*, Forwarded, the trace context). Forwarding a
 * client's copy would leak the token or let the client forge what the upstream trusts.
 */
export function reservedForwardHeader(name: string): string | null {
  const n = name.toLowerCase();
  if (n === 'authorization' || n === 'proxy-authorization') return 'carries credentials (the token is never forwarded)';
  if (n.startsWith('sec-websocket-') || n === 'host' || n === 'connection' || n === 'upgrade')
    return 'belongs to the upstream handshake, which the gateway writes itself';
  if (n.startsWith('x-forwarded-') || n === 'forwarded')
    return 'is set by the gateway from the resolved client; a client copy would be forged';
  if (n === 'traceparent' || n === 'tracestate') return 'is set by the gateway from its own span';
  return null;
}

const forwardHeader = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
  .superRefine((v, ctx) => {
    const why = reservedForwardHeader(v);
    if (why) ctx.addIssue({ code: 'custom', message: `${v} cannot be forwarded: it ${why}` });
  });

const rejectWith = z
  .enum(['http', 'close'])
  .describe(
    "How admission rejections reach the client: 'http' answers the handshake with the documented status; " +
      "'close' accepts and closes at once with the documented close code and a JSON reason (browsers cannot see handshake statuses).",
  );

const routeSchema = z
  .object({
    path: z
      .string()
      .startsWith('/', 'must start with /')
      .describe(
        'Public path prefix, e.g. /ws/notifications/, matched on segment boundaries (/chat matches /chat and /chat/…, not /chatadmin). The longest matching prefix wins.',
      ),
    upstream: wsUrl.describe(
      "Upstream WebSocket URL for this prefix. The rest of the client path is appended to its path; its own query comes first, then the client's query (minus the token).",
    ),
    allowAnonymous: z.boolean().default(false).describe('Admit connections that carry no token (an invalid token is still rejected).'),
    rejectWith: rejectWith.optional().describe('Overrides server.rejectWith for this route.'),
  })
  .strict();

const policyBase = {
  dryRun: z.boolean().default(false).describe('Count what this policy would reject, and let it through.'),
};

const onStoreError = z
  .enum(['fail-open', 'fail-closed'])
  .default('fail-closed')
  .describe(
    'When the shared (Redis) limit store cannot answer: fail-open counts locally at this limit ÷ limits.expectedReplicas (at least 1) and reports the store degraded; ' +
      'fail-closed refuses with 503 store_unavailable and Retry-After.',
  );

const pemFile = z.string().min(1, 'must be a file path');

/** One certificate/key pair the public listener serves (the default one, or an SNI entry). */
const certPair = {
  certFile: pemFile.describe('PEM certificate file; may hold the chain after the leaf (leaf first).'),
  keyFile: pemFile.describe('PEM private key file matching certFile.'),
  caFile: pemFile.optional().describe('Optional PEM file of intermediate certificates served after the leaf.'),
  passphrase: z.string().optional().describe('Passphrase of an encrypted keyFile (prefer WSGUARD_* env over a file).'),
};

const serverTlsSchema = z
  .object({
    ...certPair,
    minVersion: z
      .enum(['TLSv1.2', 'TLSv1.3'])
      .default('TLSv1.2')
      .refine(
        (v) => v === 'TLSv1.2',
        'TLSv1.3 cannot be enforced: this uWebSockets.js build offers TLS 1.2 and 1.3 with no way to refuse 1.2',
      )
      .describe('Lowest TLS version offered. TLS 1.0/1.1 are never offered; TLS 1.3 is negotiated whenever the client supports it.'),
    sni: z
      .array(
        z
          .object({
            serverName: z
              .string()
              .regex(/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, 'must be a host name, or *.name for one label of wildcard')
              .describe('Host name clients send in SNI; *.example.com matches one label.'),
            ...certPair,
          })
          .strict(),
      )
      .default([])
      .describe('More certificates, picked by the SNI name the client sends; a client that sends no match gets the default pair.'),
    watch: z
      .boolean()
      .default(true)
      .describe(
        'Reload when a certificate or key file changes (and on SIGHUP either way); a bad new pair is refused and the old one keeps serving.',
      ),
    reloadDebounceMs: z
      .number()
      .int()
      .min(0)
      .default(500)
      .describe('Quiet time after the last file change before a reload, so that a cert and key written one after the other load together.'),
  })
  .strict()
  .describe(
    'Serve wss:// (uWS SSLApp). Off when absent. Rotation starts a listener with the new pairs on the same port and closes the old one; open connections keep their session.',
  );

const upstreamTlsSchema = z
  .object({
    caFile: pemFile.optional().describe('PEM CA bundle trusted for wss:// upstreams instead of the system roots.'),
    certFile: pemFile.optional().describe('Client certificate presented to wss:// upstreams (mTLS); needs keyFile.'),
    keyFile: pemFile.optional().describe('Private key of certFile.'),
    passphrase: z.string().optional().describe('Passphrase of an encrypted keyFile.'),
    serverName: z
      .string()
      .optional()
      .describe("Name to send in SNI and to verify the upstream's certificate against (default: the URL's host)."),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'certFile and keyFile go together (a client certificate needs its key)',
    path: ['keyFile'],
  })
  .prefault({})
  .describe('TLS for wss:// upstreams.');

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1').describe('Address the public WebSocket listener binds to.'),
        port: z.number().int().min(0).max(65535).default(8080).describe('Public WebSocket port (0 picks a free port).'),
        rejectWith: rejectWith.default('http'),
        handshakeTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe(
            'Deadline for the whole admission + upstream dial; past it the client gets 504 and the dial is cancelled (uWS has no such deadline itself). At least upstream.dialTimeoutMs.',
          ),
        idleTimeoutSec: z
          .number()
          .int()
          .min(0)
          .default(120)
          .refine((v) => v === 0 || v >= 8, 'must be 0 (off) or at least 8 (uWS pings at half the idle time)')
          .describe('Close a connection that has been silent this long; automatic pings keep live ones open. 0 turns it off.'),
        maxLifetimeSec: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('Close connections older than this many seconds with 4201, reconnect now (0: no limit).'),
        drainWindowMs: z
          .number()
          .int()
          .min(0)
          .default(10_000)
          .describe('On SIGTERM, open connections are closed with 1001 spread evenly over this window.'),
        trustedProxies: z
          .array(cidr)
          .default([])
          .describe(
            'CIDRs whose X-Forwarded-For is trusted, walked right to left (an entry may carry a port: 1.2.3.4:5678, [2001:db8::1]:443). Empty: the socket peer is the client.',
          ),
        maxPendingPerClient: z
          .number()
          .int()
          .positive()
          .default(10)
          .describe(
            'Sockets one client key may hold that are not admitted connections: handshakes in progress, and rejected sockets ' +
              "still closing in rejectWith: close mode (counted for uWS's post-close timeout, up to 16 s). Past it: 429 pending_limit over HTTP.",
          ),
        minFreeFds: z
          .number()
          .int()
          .min(0)
          .default(256)
          .describe(
            'File descriptors to keep free (at most a quarter of the soft limit): below this headroom new handshakes get 503 overloaded and /readyz reports not ready.',
          ),
        ipv6PrefixLength: z
          .number()
          .int()
          .min(1)
          .max(128)
          .default(64)
          .describe('IPv6 clients are grouped by this prefix for per-IP limits.'),
        tls: serverTlsSchema.optional(),
      })
      .strict()
      .prefault({}),
    routes: z
      .array(routeSchema)
      .default([])
      .describe(
        'Public path prefixes and their upstreams. At least one is required; `serve --demo` fronts the built-in demo upstream instead.',
      ),
    origins: z
      .object({
        allowed: z
          .array(origin)
          .default([])
          .describe('Origins allowed to connect, matched exactly on scheme, host and port. Empty: any origin.'),
        allowMissing: z.boolean().default(true).describe('Admit handshakes with no Origin header (non-browser clients).'),
        ...policyBase,
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        attempts: z
          .object({
            max: z.number().int().positive().default(10).describe('Connection attempts per client IP per window.'),
            windowMs: z.number().int().positive().default(3_600_000).describe('Sliding window for connection attempts.'),
            onStoreError,
            ...policyBase,
          })
          .strict()
          .prefault({}),
        concurrent: z
          .object({
            max: z.number().int().positive().default(5).describe('Open connections per client IP.'),
            retryAfterSec: z
              .number()
              .int()
              .positive()
              .default(30)
              .describe('Retry-After sent with a concurrent-limit 429 (a slot frees when some connection closes).'),
            onStoreError,
            ...policyBase,
          })
          .strict()
          .prefault({}),
        maxTrackedKeys: z
          .number()
          .int()
          .positive()
          .default(100_000)
          .describe(
            'Client keys the in-memory limit store tracks at most (about 300 B of heap each at 10 attempts: 30 MB at the default, about 57 MB of RSS). ' +
              'At the cap a client not yet tracked is refused with 503 store_full; tracked ones keep their limits (nothing is evicted).',
          ),
        store: z
          .enum(['memory', 'redis'])
          .default('memory')
          .describe(
            'Where the per-IP limits are counted: memory (this replica only) or redis (shared by every replica using the same limits.redis.url and keyPrefix).',
          ),
        expectedReplicas: z
          .number()
          .int()
          .positive()
          .default(1)
          .describe(
            'Replicas sharing the Redis store; a fail-open limit counts locally at its max ÷ this (at least 1) while Redis is unavailable.',
          ),
        redis: z
          .object({
            url: z
              .string()
              .refine((v) => URL.canParse(v) && ['redis:', 'rediss:'].includes(new URL(v).protocol), 'must be a redis:// or rediss:// URL')
              .default('redis://127.0.0.1:6379')
              .describe('Standalone Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS); used with limits.store=redis.'),
            cluster: z
              .array(
                z
                  .string()
                  .refine(
                    (v) => URL.canParse(v) && ['redis:', 'rediss:'].includes(new URL(v).protocol),
                    'must be a redis:// or rediss:// URL',
                  ),
              )
              .default([])
              .describe(
                'Seed nodes of a Redis Cluster (redis://host:port each); when set, limits.redis.url is not used. Each decision touches one slot (the client key is the hash tag).',
              ),
            sentinels: z
              .array(
                z
                  .string()
                  .refine(
                    (v) => URL.canParse(v) && ['redis:', 'rediss:'].includes(new URL(v).protocol),
                    'must be a redis:// or rediss:// URL',
                  ),
              )
              .default([])
              .describe(
                'Redis Sentinel addresses (redis://[:password@]host:port each); when set, the master named limits.redis.sentinelName is used, ' +
                  "with limits.redis.url's user and password (its host is not used).",
              ),
            sentinelName: z.string().min(1).default('mymaster').describe('Master name the sentinels monitor (limits.redis.sentinels).'),
            keyPrefix: z
              .string()
              .refine((v) => !/[{}]/.test(v), 'must not contain { or }: the client key is the hash tag')
              .default('wsguard:')
              .describe(
                'Prefix of every Redis key; each key then carries the client key as a hash tag ({…}), so one decision touches one slot.',
              ),
            deadlineMs: z
              .number()
              .int()
              .positive()
              .default(50)
              .describe(
                "Deadline of each Redis call; a slower answer counts as a store failure (the handshake follows the limit's onStoreError).",
              ),
            leaseTtlMs: z
              .number()
              .int()
              .min(1_000)
              .default(30_000)
              .describe(
                'A concurrent-connection lease expires this long after its last renewal, so a replica that dies stops counting within it.',
              ),
            renewIntervalMs: z
              .number()
              .int()
              .positive()
              .optional()
              .describe(
                'How often live leases are renewed (one pipeline per interval) and re-registered after Redis restarts empty. Default: a third of leaseTtlMs.',
              ),
            breakerThreshold: z
              .number()
              .int()
              .positive()
              .default(3)
              .describe(
                'Consecutive Redis failures that open the circuit breaker: calls then fail at once, without waiting for the deadline.',
              ),
            breakerCooldownMs: z
              .number()
              .int()
              .positive()
              .default(1_000)
              .describe('How long the open breaker waits before one probe call tries Redis again.'),
          })
          .strict()
          .superRefine((r, ctx) => {
            if (r.cluster.length && r.sentinels.length) {
              ctx.addIssue({
                code: 'custom',
                path: ['sentinels'],
                message: 'set limits.redis.cluster or limits.redis.sentinels, not both',
              });
            }
            if (r.renewIntervalMs !== undefined && r.renewIntervalMs >= r.leaseTtlMs) {
              ctx.addIssue({
                code: 'custom',
                path: ['renewIntervalMs'],
                message: `must be shorter than limits.redis.leaseTtlMs (${r.leaseTtlMs})`,
              });
            }
          })
          .prefault({}),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        secret: z.string().min(32, 'must be at least 32 characters (256 bits) for HS256').optional().describe('Shared HMAC secret.'),
        publicKeys: z.array(z.string()).default([]).describe('Public keys as PEM (SPKI) or JWK JSON strings; a JWK may carry a kid.'),
        jwksUrl: z
          .url()
          .optional()
          .describe('JWKS URL; refreshed every jwksRefreshSec, and the last good set is kept when a refresh fails.'),
        jwksRefreshSec: z.number().int().positive().default(600).describe('How often the JWKS is re-fetched.'),
        jwksCooldownSec: z
          .number()
          .min(0)
          .default(30)
          .describe('A token with an unknown kid triggers a JWKS re-fetch at most this often (key rotation).'),
        jwksRetryMinMs: z
          .number()
          .int()
          .positive()
          .default(1_000)
          .describe(
            'While no JWKS has loaded, a failed fetch is retried in the background after this delay, doubling per failure; ' +
              'handshakes meanwhile get 503 auth_unavailable and never start a fetch themselves.',
          ),
        jwksRetryMaxMs: z.number().int().positive().default(60_000).describe('Cap of the JWKS retry delay (jwksRetryMinMs doubling).'),
        algorithms: z
          .array(
            z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
          )
          .min(1)
          .optional()
          .describe('Accepted JWS algorithms (pinned). Default: HS256 with a secret, else RS256.'),
        issuer: z.string().optional().describe('Required iss claim.'),
        audience: z
          .string()
          .optional()
          .describe(
            'Required aud claim. Whether set or not, a token whose aud includes telemetry.monitoring.audience is refused on client routes.',
          ),
        clockToleranceSec: z.number().int().min(0).max(300).default(0).describe('Leeway for exp/nbf/iat checks.'),
        queryParam: z
          .string()
          .min(1)
          .default('access_token')
          .describe('Query parameter that may carry the token; it is stripped before relaying.'),
        subprotocolPrefix: z
          .string()
          .min(1)
          .default('bearer.')
          .describe('A Sec-WebSocket-Protocol entry with this prefix carries the token; it is never echoed nor relayed.'),
        subprotocolMarker: z
          .string()
          .min(1)
          .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be an HTTP token (RFC 6455 §4.1: a subprotocol is a token)')
          .default('wsguard.auth')
          .describe(
            'Subprotocol a client offers beside its bearer.<token> entry. A browser fails a handshake in which the server selects no ' +
              'subprotocol, and the token entry is never echoed, so wsguard selects this marker when the upstream selects none. Never relayed.',
          ),
        claimHeaders: z
          .record(z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name'), z.string())
          .default({ 'X-Auth-Sub': 'sub' })
          .describe('Headers sent to the upstream from verified claims (header → claim). Incoming copies are removed.'),
        closeOnExpiry: z.boolean().default(true).describe('Close an open connection with 4200 when its token expires.'),
        verifiedCacheSize: z
          .number()
          .int()
          .min(0)
          .default(10_000)
          .describe(
            'Tokens that passed verification are remembered by their exact text, this many at most (the oldest is forgotten first), so a ' +
              'client reconnecting with the same token skips the signature check; exp is checked on every use and the set is emptied ' +
              'whenever a JWKS loads. About 0.5 KB per entry for a 265-character token (measured). 0 turns it off.',
          ),
        ...policyBase,
      })
      .strict()
      .prefault({}),
    messages: z
      .object({
        maxBytes: z
          .number()
          .int()
          .positive()
          .default(1_048_576)
          .describe('Largest message accepted from a client or an upstream; larger ones close with 1009.'),
        rate: z
          .object({
            perMinute: z.number().positive().default(60).describe('Token-bucket refill rate per connection.'),
            burst: z.number().int().positive().default(60).describe('Token-bucket capacity: messages allowed back to back.'),
            bytesPerSecond: z.number().int().positive().optional().describe('Optional per-connection byte rate (bucket of one second).'),
            action: z.enum(['close', 'drop']).default('close').describe("On violation: 'close' with 4129, or 'drop' the message."),
            notice: z.boolean().default(true).describe("With action 'drop': send the client a JSON notice frame (at most one a second)."),
          })
          .strict()
          .prefault({}),
        controlFramesPerSec: z
          .number()
          .positive()
          .default(10)
          .describe(
            'Ping and pong frames a peer may send on one connection per second, counted separately for the client and the upstream, ' +
              'with a burst of twice this. Past it the client is closed with 1008, or the upstream leg with 1008 (the client then gets 1014).',
          ),
      })
      .strict()
      .prefault({}),
    backpressure: z
      .object({
        highWaterBytes: z
          .number()
          .int()
          .positive()
          .default(1_048_576)
          .describe(
            'Bytes queued towards a slow side (the client, or the upstream on either client leg) before the other side is paused or stalled.',
          ),
        maxStallMs: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe('A side that stays over the high-water mark this long is closed (4102).'),
        maxBufferedBytes: z
          .number()
          .int()
          .positive()
          .default(8_388_608)
          .describe('Hard cap of bytes queued towards one side; past it the connection is closed at once (4102).'),
      })
      .strict()
      .prefault({}),
    upstream: z
      .object({
        client: z.enum(['lean', 'ws']).default('lean').describe("Client leg: 'lean' framing on net.Socket, or the 'ws' library."),
        dialTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(5_000)
          .describe('TCP connect + upgrade deadline for the upstream (504 past it).'),
        localAddresses: z
          .array(z.union([z.ipv4(), z.ipv6()]))
          .default([])
          .describe(
            "Local (source) addresses the upstream dial rotates over, like nginx's proxy_bind: each adds its own range of ephemeral ports towards one upstream address (docs/scaling.md). Empty: the kernel picks one.",
          ),
        forwardHeaders: z
          .array(forwardHeader)
          .default(['cookie', 'user-agent', 'accept-language'])
          .describe(
            'Client request headers passed on to the upstream. Refused: Authorization, Proxy-Authorization, Sec-WebSocket-*, Host, Connection, Upgrade, X-Forwarded-*, Forwarded, traceparent/tracestate and any auth.claimHeaders name.',
          ),
        tls: upstreamTlsSchema,
      })
      .strict()
      .prefault({}),
    client: z
      .object({
        serve: z
          .boolean()
          .default(false)
          .describe(
            'Serve the wsguard/client browser bundle (one ES module, built at start-up, docs/client.md) at GET /client.js on the public listener.',
          ),
      })
      .strict()
      .prefault({}),
    telemetry: telemetrySchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.auth.audience !== undefined && c.auth.audience === c.telemetry.monitoring.audience) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'audience'],
        message: 'must differ from telemetry.monitoring.audience, or client and monitoring tokens would be interchangeable',
      });
    }
    if (c.auth.jwksRetryMaxMs < c.auth.jwksRetryMinMs) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'jwksRetryMaxMs'], message: 'must be at least auth.jwksRetryMinMs' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type ServerTlsConfig = z.infer<typeof serverTlsSchema>;
export type UpstreamTlsConfig = z.infer<typeof upstreamTlsSchema>;
export type RawConfig = z.input<typeof configSchema>;
