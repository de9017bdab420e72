import { defineConfig } from 'vitest/config';

// Shared by every workspace: `vitest run --root . --config ../../vitest.config.ts`.
// The `source` export condition makes tests import sibling packages' TypeScript
// sources directly, so a change in core is seen by its dependants without a rebuild.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
