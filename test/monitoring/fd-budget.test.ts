import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { parseSoftFdLimit, readOpenFds, reserveFor, startFdBudget } from '../../src/monitoring/fd-budget.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 1048576              files
Max locked memory         8388608              8388608              bytes
`;

describe('fd budget', () => {
  it('reads the soft open-files limit from /proc/<pid>/limits text', () => {
    expect(parseSoftFdLimit(LIMITS)).toBe(1024);
    expect(parseSoftFdLimit(LIMITS.replace('1024 ', 'unlimited'))).toBeNull();
    expect(parseSoftFdLimit('nothing here')).toBeNull();
  });

  it('keeps at most a quarter of the limit in reserve', () => {
    expect(reserveFor(1024, 256)).toBe(256);
    expect(reserveFor(256, 256)).toBe(64);
    expect(reserveFor(null, 256)).toBe(256);
  });

  it('is exhausted only when a known sample leaves less than the reserve', () => {
    let open: number | null = 700;
    const budget = startFdBudget({ minFree: 256, readOpen: () => open, readLimit: () => 1024 });
    try {
      expect(budget.reserve).toBe(256);
      expect(budget.exhausted()).toBe(false);
      open = 800;
      expect(budget.sample()).toEqual({ open: 800, limit: 1024 });
      expect(budget.exhausted()).toBe(true);
    } finally {
      budget.stop();
    }
    const full = startFdBudget({ minFree: 256, readOpen: () => 800, readLimit: () => 1024 });
    expect(full.exhausted()).toBe(true);
    full.stop();
    const unknown = startFdBudget({ minFree: 256, readOpen: () => null, readLimit: () => 1024 });
    expect(unknown.exhausted()).toBe(false);
    unknown.stop();
  });

  it('reads this process for real on Linux', () => {
    const budget = startFdBudget({ minFree: 16 });
    try {
      const { open, limit } = budget.sample();
      expect(open).toBeGreaterThan(2);
      expect(limit).toBeGreaterThan(open!);
    } finally {
      budget.stop();
    }
  });

  it('counts open fds from the size of /proc/self/fd, without opening one (the listing holds one more: its own)', () => {
    const counted = readOpenFds();
    const listed = readdirSync('/proc/self/fd').length;
    expect(counted).toBe(listed - 1);
  });

  it('follows the count through its watcher child, not by stat calls in this process', async () => {
    const budget = startFdBudget({ minFree: 16, minIntervalMs: 100 });
    const sockets: net.Socket[] = [];
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const until = async (check: () => boolean) => {
        for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
        expect(check()).toBe(true);
      };
      await until(() => budget.sample().open !== null);
      const before = budget.sample().open!;
      const port = (server.address() as net.AddressInfo).port;
      for (let i = 0; i < 40; i++) sockets.push(net.connect(port, '127.0.0.1'));
      // 40 client sockets and the 40 the server accepted: at least 60 more fds, reported within 5 s.
      await until(() => budget.sample().open! >= before + 60);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      budget.stop();
    }
  });
});
