/** Two projects: `unit` needs no servers; `integration` runs against the real local stack
 *  (Kafka, schema registry, Redis) started once by the global setup. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
module.exports = {
  // Per-project testTimeout is ignored by jest; integration tests need long ones (servers, rebalances).
  testTimeout: 180000,
  // A client a test forgot to close must not keep CI waiting after the last test: exit when done.
  forceExit: true,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testEnvironment: '<rootDir>/test/helpers/node-environment.js',
      transform: { '^.+\\.ts$': tsJest },
      // Examples keep their own tests beside them (examples/<name>/test/{unit,integration}).
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/examples/*/test/unit/**/*.test.ts'],
      // System packages some unit tests run (chromium): same set-up as the other projects, no servers.
      globalSetup: '<rootDir>/test/helpers/prerequisites-setup.ts',
    },
    {
      displayName: 'integration',
      testEnvironment: '<rootDir>/test/helpers/node-environment.js',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/examples/*/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
    {
      // Fault tests: real processes killed, paused and restarted (npm run test:faults; part of npm test).
      displayName: 'faults',
      testEnvironment: '<rootDir>/test/helpers/node-environment.js',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
};
