import type { ClickHouseClient } from "@clickhouse/client";
import { afterAll, describe, expect, it } from "vitest";
import { buildApp } from "../api/app.ts";
import { loadConfig } from "../config.ts";
import { pipelineStatus } from "./pipeline-totals.ts";

describe("pipelineStatus", () => {
  const now = Date.parse("2026-12-01T10:30:15.250Z");

  it("derives duplicates as received − counted − dead letters − lag, and freshness as now − newest", () => {
    const status = pipelineStatus(
      { received: 120n, deadLetters: 3n, lag: 7n },
      { counted: 100n, newestMs: now - 1500 },
      now,
    );
    expect(status).toEqual({
      measuredAt: "2026-12-01T10:30:15.250Z",
      received: 120,
      counted: 100,
      deadLetters: 3,
      lag: 7,
      duplicates: 10,
      newestEventTime: "2026-12-01T10:30:13.750Z",
      freshnessMs: 1500,
    });
  });

  it("never answers negative duplicates (the two engines are not read at one instant)", () => {
    const status = pipelineStatus({ received: 10n, deadLetters: 0n, lag: 4n }, { counted: 9n, newestMs: now }, now);
    expect(status.duplicates).toBe(0);
  });

  it("answers null for the newest event time and freshness while nothing is counted", () => {
    const status = pipelineStatus(
      { received: 0n, deadLetters: 0n, lag: 0n },
      { counted: 0n, newestMs: undefined },
      now,
    );
    expect(status).toMatchObject({ counted: 0, duplicates: 0, newestEventTime: null, freshnessMs: null });
  });
});

const config = loadConfig({
  AUTH: "off",
  API_ROLE: "query",
  API_KEYS_FILE: "/nonexistent/keys.json",
  // Nothing listens on port 1: the connection is refused at once.
  KAFKA_BROKERS: "127.0.0.1:1",
});
const clickhouse = {
  query: async () => ({ json: async () => [{ counted: "0", newest: 0 }] }),
} as unknown as ClickHouseClient;
const app = await buildApp({ config, clickhouse, checks: {}, logger: false });
afterAll(() => app.close());

describe("GET /stats/pipeline without Kafka", () => {
  it("answers 503 kafka_unavailable, with Retry-After", async () => {
    const response = await app.inject({ url: "/stats/pipeline" });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ error: "kafka_unavailable" });
    expect(response.headers["retry-after"]).toBeDefined();
  });

  it("refuses an unknown query parameter", async () => {
    const response = await app.inject({ url: "/stats/pipeline?window=5" });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: "invalid_query" });
  });
});
