/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

/**
 * Jest runs in native ESM mode (`node --experimental-vm-modules`, see the `test` script) so that
 * ESM-only packages such as Angular 22 and NestJS 12 can be imported by specs without a
 * CommonJS shim. ts-jest transpiles each file on its own (`isolatedModules` in tsconfig.json);
 * the type check is `npm run typecheck`, which CI runs before the tests.
 */
const config: Config = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/spec/e2e/'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  // A throwaway redis-server for the run on a free port (REDIS_URL overrides), stopped after.
  globalSetup: '<rootDir>/spec/setup/redis.mjs',
  globalTeardown: '<rootDir>/spec/setup/redisTeardown.mjs',
  // One fixed fast-check seed unless PROPERTY_SEED says otherwise (spec/setup/properties.ts).
  setupFiles: ['<rootDir>/spec/setup/properties.ts'],
  testTimeout: 30_000,
};

export default config;
