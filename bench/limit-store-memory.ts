/**
 * What does one tracked client key cost the in-memory limit store, and how long does a sweep take
 * at the cap? Fills a store with N distinct keys (each holding `--attempts` attempts, and by default
 * one concurrent slot like an open connection), forces GC, and prints heapUsed and RSS deltas per key;
 * then times `sweep()` over the full store (nothing expired: the worst case, every entry visited and
 * kept) and over a store whose attempts have all aged out (every entry deleted).
 *
 * Usage: node --expose-gc --import tsx bench/limit-store-memory.ts [--keys 100000] [--attempts 1] [--max 10]
 */
import { MemoryLimitStore } from '../src/limits/memory-store.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc --import tsx bench/limit-store-memory.ts');
  process.exit(2);
}

const keys = arg('keys', 100_000);
const attempts = arg('attempts', 1);
const max = arg('max', 10);
const windowMs = 3_600_000;

/** Keys shaped like the gateway's: IPv4 addresses and IPv6 /64 prefixes, half each. */
function keyOf(i: number): string {
  return i % 2 === 0
    ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
    : `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;
}

function settle(): { heap: number; rss: number } {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

async function fill(store: MemoryLimitStore, keyStrings: string[], now: number): Promise<void> {
  for (let i = 0; i < keys; i++) {
    const k = keyStrings[i]!;
    for (let a = 0; a < attempts; a++) {
      const r = await store.tryAttempt(k, max, windowMs, now + a);
      if (!r.ok) throw new Error(`attempt ${a} of key ${i} refused`);
    }
  }
}

const storeOptions = { maxTrackedKeys: keys };
// Key strings are made before the baseline so that only the store's own bytes are counted
// (the gateway holds a key string per handshake anyway).
const keyStrings = Array.from({ length: keys }, (_, i) => keyOf(i));
const before = settle();
const store = new MemoryLimitStore(storeOptions);
const now = Date.now();
await fill(store, keyStrings, now);
const after = settle();
if (store.size() !== keys) throw new Error(`store holds ${store.size()} keys, expected ${keys}`);
const perKeyHeap = (after.heap - before.heap) / keys;
const perKeyRss = (after.rss - before.rss) / keys;

let t = performance.now();
store.sweep(now + 1);
const sweepKeepMs = performance.now() - t;
t = performance.now();
store.sweep(now + windowMs + attempts + 1);
const sweepDropMs = performance.now() - t;
const left = store.size();
keyStrings.length = 0;
await store.close();

console.log(
  JSON.stringify({
    keys,
    attemptsPerKey: attempts,
    max,
    heapBytesPerKey: Math.round(perKeyHeap),
    rssBytesPerKey: Math.round(perKeyRss),
    heapMiBTotal: +((after.heap - before.heap) / 2 ** 20).toFixed(1),
    sweepAllKeptMs: +sweepKeepMs.toFixed(1),
    sweepAllExpiredMs: +sweepDropMs.toFixed(1),
    keysLeftAfterExpiry: left,
  }),
);
