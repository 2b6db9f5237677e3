import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // The real server loads the embedded model on the first request: minutes on a busy 2-core CI.
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
