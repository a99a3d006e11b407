import { randomUUID } from "node:crypto";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import { Valkey } from "iovalkey";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { testConfig } from "../../test/support/config.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { buildApp } from "./app.ts";
import { readinessChecks } from "./checks.ts";

const suffix = randomUUID().slice(0, 8);
const config = testConfig({
  KAFKA_TOPIC: `health-${suffix}`,
  KAFKA_DLQ_TOPIC: `health-${suffix}.dlq`,
  API_ROLE: "ingest",
});
const valkeyOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 } as const;
let producer: ImpressionProducer;
const valkey = new Valkey(config.VALKEY_URL, valkeyOptions);
const clickhouse = createClickHouse(config);
let healthy: FastifyInstance;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  healthy = await buildApp({
    config,
    producer,
    checks: readinessChecks("ingest", { producer, valkey, clickhouse }),
    logger: false,
  });
});

afterAll(async () => {
  await healthy?.close();
  await producer?.close();
  valkey.disconnect();
  await clickhouse.close();
});

describe("GET /healthz", () => {
  it("answers 200 { status: ok }", async () => {
    const response = await healthy.inject({ method: "GET", url: "/healthz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });
});

describe("GET /readyz", () => {
  it("answers 200 with every engine up when Kafka, Valkey and ClickHouse answer", async () => {
    const response = await healthy.inject({ method: "GET", url: "/readyz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: "ready",
      engines: { kafka: { status: "up" }, valkey: { status: "up" }, clickhouse: { status: "up" } },
    });
  });

  it("answers 503 naming the engine that is down, within about a second", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const deadValkey = new Valkey(nowhere.replace("http", "redis"), valkeyOptions);
    deadValkey.on("error", () => {});
    const deadClickHouse = createClient({ url: nowhere, log: { level: ClickHouseLogLevel.OFF } });
    const app = await buildApp({
      config,
      producer,
      checks: readinessChecks("ingest", { producer, valkey: deadValkey, clickhouse: deadClickHouse }),
      logger: false,
    });
    try {
      const started = Date.now();
      const response = await app.inject({ method: "GET", url: "/readyz" });
      expect(Date.now() - started).toBeLessThan(1500);
      expect(response.statusCode).toBe(503);
      const body = response.json();
      expect(body).toMatchObject({ error: "not_ready", message: "not ready: valkey, clickhouse down" });
      expect(body.details.engines.kafka).toEqual({ status: "up" });
      expect(body.details.engines.valkey.status).toBe("down");
      expect(body.details.engines.clickhouse.status).toBe("down");
      expect(body.details.engines.clickhouse.error).toContain("ECONNREFUSED");
    } finally {
      await app.close();
      deadValkey.disconnect();
      await deadClickHouse.close();
    }
  });
});
