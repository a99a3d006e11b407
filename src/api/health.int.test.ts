import { randomUUID } from "node:crypto";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { type ApiProcess, startApi } from "../../test/support/api-process.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { buildApp } from "./app.ts";
import { readinessChecks } from "./checks.ts";
import type { ApiRole } from "./role.ts";

const suffix = randomUUID().slice(0, 8);
const config = testConfig({ ...ownTopics("health") });
const db = useTestDatabase(() => config);
let nowhere: number;
let producer: ImpressionProducer;
let deadProducer: ImpressionProducer;
const clickhouse = createClickHouse(config);
let deadClickHouse: ReturnType<typeof createClient>;
const apps: FastifyInstance[] = [];
const processes: ApiProcess[] = [];

beforeAll(async () => {
  nowhere = await freePort();
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  deadProducer = createImpressionProducer({ ...config, KAFKA_BROKERS: [`127.0.0.1:${nowhere}`] });
  deadClickHouse = createClient({ url: `http://127.0.0.1:${nowhere}`, log: { level: ClickHouseLogLevel.OFF } });
});

afterAll(async () => {
  for (const api of processes) api.kill();
  await Promise.all(apps.map((app) => app.close()));
  await Promise.allSettled([producer?.close(), deadProducer?.close(), clickhouse.close(), deadClickHouse?.close()]);
});

/** An API of `role` whose Kafka and ClickHouse are up or unreachable, as each test says. */
async function readyz(role: ApiRole, engines: { kafka: "up" | "down"; clickhouse: "up" | "down" }) {
  const own = { ...config, API_ROLE: role };
  const deps = {
    producer: engines.kafka === "up" ? producer : deadProducer,
    clickhouse: engines.clickhouse === "up" ? clickhouse : deadClickHouse,
  };
  const app = await buildApp({ config: own, ...deps, checks: readinessChecks(role, deps), logger: false });
  apps.push(app);
  const started = Date.now();
  const response = await app.inject({ method: "GET", url: "/readyz" });
  return { status: response.statusCode, body: response.json(), ms: Date.now() - started };
}

describe("GET /healthz", () => {
  it("answers 200 { status: ok }", async () => {
    const app = await buildApp({ config, producer, clickhouse, checks: {}, logger: false });
    apps.push(app);
    const response = await app.inject({ method: "GET", url: "/healthz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });
});

describe("GET /readyz by API_ROLE", () => {
  it("ingest: ready on Kafka alone, whatever ClickHouse does", async () => {
    expect(await readyz("ingest", { kafka: "up", clickhouse: "down" })).toMatchObject({
      status: 200,
      body: { status: "ready", engines: { kafka: { status: "up" } } },
    });
    const down = await readyz("ingest", { kafka: "down", clickhouse: "up" });
    expect(down).toMatchObject({ status: 503, body: { error: "not_ready", message: "not ready: kafka down" } });
    expect(Object.keys(down.body.details.engines)).toEqual(["kafka"]);
  });

  it("query: ready on ClickHouse alone, whatever Kafka does", async () => {
    expect(await readyz("query", { kafka: "down", clickhouse: "up" })).toMatchObject({
      status: 200,
      body: { status: "ready", engines: { clickhouse: { status: "up" } } },
    });
    const down = await readyz("query", { kafka: "up", clickhouse: "down" });
    expect(down).toMatchObject({ status: 503, body: { error: "not_ready", message: "not ready: clickhouse down" } });
    expect(Object.keys(down.body.details.engines)).toEqual(["clickhouse"]);
    expect(down.body.details.engines.clickhouse).toEqual({ status: "down" });
  });

  it("all: ready when both answer, not ready naming the one that does not, within about a second", async () => {
    expect(await readyz("all", { kafka: "up", clickhouse: "up" })).toMatchObject({
      status: 200,
      body: { status: "ready", engines: { kafka: { status: "up" }, clickhouse: { status: "up" } } },
    });
    const noKafka = await readyz("all", { kafka: "down", clickhouse: "up" });
    expect(noKafka).toMatchObject({ status: 503, body: { message: "not ready: kafka down" } });
    expect(noKafka.body.details.engines).toMatchObject({ kafka: { status: "down" }, clickhouse: { status: "up" } });
    expect(noKafka.ms).toBeLessThan(1500);
    const noClickHouse = await readyz("all", { kafka: "up", clickhouse: "down" });
    expect(noClickHouse).toMatchObject({ status: 503, body: { message: "not ready: clickhouse down" } });
    expect(noClickHouse.body.details.engines).toMatchObject({
      kafka: { status: "up" },
      clickhouse: { status: "down" },
    });
  });
});

/** `node src/api/main.ts` as pm2 runs it, with `env` over the test stack's; resolves once it answers /healthz. */
async function startApiProcess(env: Record<string, string>): Promise<string> {
  const api = await startApi(config, {
    CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE,
    AUTH: "off",
    API_KEYS_FILE: "/nonexistent/keys.json",
    ...env,
  });
  processes.push(api);
  return api.url;
}

describe("the api process by API_ROLE", () => {
  it("ingest needs neither ClickHouse nor Valkey: ready, and takes events, with both unreachable", async () => {
    const url = await startApiProcess({
      API_ROLE: "ingest",
      CLICKHOUSE_URL: `http://127.0.0.1:${nowhere}`,
      VALKEY_URL: `redis://127.0.0.1:${nowhere}`,
    });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", engines: { kafka: { status: "up" } } });
    const sent = await fetch(`${url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `ready-${suffix}`, ts: Date.now(), userId: "u1", adId: "ad-1" }),
    });
    expect(sent.status).toBe(202);
  });

  it("query needs neither Kafka nor Valkey: ready, and answers /stats, with both unreachable", async () => {
    const url = await startApiProcess({
      API_ROLE: "query",
      KAFKA_BROKERS: `127.0.0.1:${nowhere}`,
      VALKEY_URL: `redis://127.0.0.1:${nowhere}`,
    });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", engines: { clickhouse: { status: "up" } } });
    const stats = await fetch(`${url}/stats?timeWindowMinutes=5`);
    expect(stats.status).toBe(200);
    expect(await stats.json()).toEqual({});
  });
});
