import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (pure logic, `*.test.ts`, no engine: `npm run test:unit`) and `integration`
 * (`*.int.test.ts`, against the real engines the global setup starts). `npm test` runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores shared with the engines: more workers only add contention.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: [
            "src/**/*.test.ts",
            "stack/**/*.test.ts",
            "test/**/*.test.ts",
            "scripts/**/*.test.ts",
            "deploy/**/*.test.ts",
          ],
          exclude: ["**/*.int.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            "src/**/*.int.test.ts",
            "stack/**/*.int.test.ts",
            "test/**/*.int.test.ts",
            "deploy/**/*.int.test.ts",
          ],
          globalSetup: ["test/global-setup.ts"],
        },
      },
    ],
  },
});
