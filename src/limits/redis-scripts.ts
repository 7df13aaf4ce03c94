import { createHash } from 'node:crypto';

/**
 * The Redis store's decisions, one Lua script each so that a decision is atomic. Time comes from
 * Redis TIME inside the script, never from a replica's clock. Each script touches one key, and every
 * key carries the client key as a hash tag, so a decision lives in one slot.
 */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function script(body: string): LuaScript {
  const source = `local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n${body}`;
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Sliding log of attempts: KEYS[1] a ZSET of attempt ids scored by time; ARGV max, windowMs, id.
 * Returns {1, 0} when recorded, {0, retryAfterMs} when `max` attempts are in the window: the wait
 * until the attempt that must age out for one more to fit does (the memory store's semantics).
 */
export const ATTEMPT = script(`
local max = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= max then
  local oldest = redis.call('ZRANGE', KEYS[1], count - max, count - max, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`);

/** Concurrent leases: KEYS[1] a ZSET of lease ids scored by expiry; ARGV max, ttlMs, id. 1 taken, 0 full. */
export const ACQUIRE = script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/**
 * Renews (or re-registers, after Redis lost them) a replica's live leases of one client key:
 * KEYS[1] the lease ZSET; ARGV ttlMs, then the lease ids. No limit check: these connections are open.
 */
export const RENEW = script(`
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`);
