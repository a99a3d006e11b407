import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { type Config, loadConfig } from "../../src/config.ts";

/**
 * The config a process would load, pointed at the test stack's engines; without keys (AUTH=off) unless the
 * test turns them on, and never the developer's own keys file. No per-IP limit on the query routes unless the
 * test sets one: every test's requests come from 127.0.0.1, polls included.
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    ...inject("stackEnv"),
    LOG_LEVEL: "warn",
    AUTH: "off",
    API_KEYS_FILE: "/nonexistent/keys.json",
    QUERY_RATE_PER_IP: "0",
    ...overrides,
  });
}

/** Topics of its own for one test file: `<prefix>-<random>` and its dead-letter topic. */
export function ownTopics(prefix: string): { KAFKA_TOPIC: string; KAFKA_DLQ_TOPIC: string } {
  const topic = `${prefix}-${randomUUID().slice(0, 8)}`;
  return { KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq` };
}
