import { fileURLToPath } from "node:url";

/** The repository root: engines' caches and data live below it, git-ignored. */
export const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/**
 * Added to every fixed port the test suite uses (the test engines, the Valkey clusters of the claim and worker
 * tests), so that two checkouts can run `npm test` on one machine at once: TEST_PORT_OFFSET=100 npm test.
 */
export function testPort(port: number): number {
  const offset = Number(process.env.TEST_PORT_OFFSET ?? 0);
  if (!Number.isInteger(offset) || offset < 0 || offset > 2000) {
    throw new Error(
      `TEST_PORT_OFFSET=${JSON.stringify(process.env.TEST_PORT_OFFSET)}: must be an integer from 0 to 2000`,
    );
  }
  return port + offset;
}
