import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests open real sockets; the machine has 2 cores, so keep the fan-out modest.
    pool: 'forks',
    maxWorkers: 2,
    // Bounds for a hang, not measurements: spawning node + tsx takes seconds on a loaded 2-core machine.
    testTimeout: 45_000,
    hookTimeout: 45_000,
  },
});
