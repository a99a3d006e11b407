import { inject } from "vitest";
import { type Config, loadConfig } from "../../src/config.ts";

/** The config a process would load, pointed at the test stack's engines. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, ...inject("stackEnv"), LOG_LEVEL: "warn", ...overrides });
}
