import { describe, expect, it } from 'vitest';
import { isCliError } from '../../../cli/cli-error.ts';
import { runFlood } from '../../../cli/engine/flood.ts';
import { splitShare } from '../../../cli/engine/shard.ts';
import { floodOptions } from '../helpers/flood-options.ts';

describe('splitShare', () => {
  it('divides counts and rates, and nested splits give every virtual user to exactly one share', () => {
    const base = floodOptions('ws://127.0.0.1:1/', { connections: 10, arrivalRate: undefined, sourceIps: ['a', 'b', 'c'] });
    const users = new Set<number>();
    let total = 0;
    for (let s = 0; s < 3; s++) {
      const shard = splitShare(base, s, 3);
      for (let w = 0; w < 2; w++) {
        const share = splitShare(shard, w, 2);
        total += share.connections!;
        for (let k = 0; k < share.connections!; k++) users.add((share.userOffset ?? 0) + k * (share.userStride ?? 1));
      }
    }
    expect(total).toBe(10);
    expect([...users].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(splitShare(base, 1, 3).sourceIps).toEqual(['b', 'c', 'a']);
  });

  it('reports a token configuration mistake before the run as a usage error', async () => {
    const err = await runFlood(floodOptions('ws://127.0.0.1:1/', { connections: 1, auth: { jwt: { alg: 'HS256', expSec: 60 } } })).catch(
      (e: unknown) => e,
    );
    expect(isCliError(err) && err.exitCode).toBe(3);
    expect((err as Error).message).toContain('--jwt-secret');
  });
});
