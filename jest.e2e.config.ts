/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

/**
 * Browser tests (`npm run test:e2e`): headless Chromium through playwright-core, against the demo's live view and
 * against a real Angular 22 app with SSR (e2e/angular-app, installed and built by its test). Kept apart from `npm test` (jest.config.ts ignores spec/e2e/) so that the unit suite runs on a machine without a
 * browser. The browser is Debian's Chromium at /usr/bin/chromium, or the one `CHROMIUM_PATH` names.
 * Same ESM setup as jest.config.ts.
 */
const config: Config = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/spec/e2e'],
  testMatch: ['**/*.e2e.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 120_000,
  // One browser and one live run at a time.
  maxWorkers: 1,
};

export default config;
