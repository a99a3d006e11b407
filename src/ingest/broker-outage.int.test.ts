import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KafkaEngine, startKafka } from "../../stack/kafka.ts";
import { freePort } from "../../stack/process.ts";
import { testConfig } from "../../test/support/config.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { buildApp } from "../api/app.ts";
import type { Config } from "../config.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { apiMetrics } from "../metrics/api.ts";
import { createRegistry } from "../metrics/registry.ts";

// This file stops its broker, so it runs its own Kafka, never the shared one.
const dataDir = mkdtempSync(join(tmpdir(), "ingest-outage-"));
let kafkaOptions: Parameters<typeof startKafka>[0];
let kafka: KafkaEngine | undefined;
let config: Config;
let producer: ImpressionProducer;
let app: FastifyInstance;
let registry: Registry;

beforeAll(async () => {
  kafkaOptions = {
    port: await freePort(),
    controllerPort: await freePort(),
    dataDir: join(dataDir, "kafka"),
    logFile: join(dataDir, "kafka.log"),
    heap: "256m",
  };
  kafka = await startKafka(kafkaOptions);
  config = testConfig({
    KAFKA_BROKERS: kafka.brokers.join(","),
    KAFKA_PARTITIONS: "2",
    API_ROLE: "ingest",
    CLICK_DOMAINS: "shop.example",
  });
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  registry = createRegistry();
  const metrics = apiMetrics(registry, () => producer.bufferedBytes);
  producer = createImpressionProducer(config, metrics.observeProduce);
  app = await buildApp({ config, producer, checks: { kafka: () => producer.ping() }, metrics, logger: false });
});

afterAll(async () => {
  await app?.close();
  await producer?.close().catch(() => {});
  await kafka?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

let counter = 0;
const lostClick = `outage-click-${randomUUID().slice(0, 8)}`;
const postEvent = () =>
  app.inject({
    method: "POST",
    url: "/event",
    headers: { "content-type": "application/json" },
    payload: { id: `outage-${++counter}`, ts: Date.now(), userId: "u1", adId: "ad-1" },
  });

describe("when the broker goes away", () => {
  it("accepts while the broker is up", async () => {
    expect((await postEvent()).statusCode).toBe(202);
  });

  it("answers 503 with Retry-After within PRODUCE_TIMEOUT_MS, and /readyz says kafka is down", async () => {
    await kafka?.stop();
    kafka = undefined;
    const started = Date.now();
    const response = await postEvent();
    const elapsed = Date.now() - started;
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("1");
    expect(response.json()).toMatchObject({ error: "kafka_unavailable" });
    expect(elapsed).toBeLessThanOrEqual(config.PRODUCE_TIMEOUT_MS + 250);

    // A person who clicked is not kept waiting for Kafka: sent on after CLICK_ACK_WAIT_MS, the click lost.
    const clickedAt = Date.now();
    const click = await app.inject({ url: `/click?id=${lostClick}&adId=ad-1&url=https://shop.example/` });
    const clickMs = Date.now() - clickedAt;
    expect(click.statusCode).toBe(302);
    expect(click.headers.location).toBe("https://shop.example/");
    expect(clickMs).toBeGreaterThanOrEqual(config.CLICK_ACK_WAIT_MS - 5);
    expect(clickMs).toBeLessThanOrEqual(config.CLICK_ACK_WAIT_MS + 250);
    // Never acknowledged: once PRODUCE_TIMEOUT_MS is up the producer gives the click up, and says so.
    await expect
      .poll(async () => (await registry.getSingleMetric("clicks_redirected_total")?.get())?.values, {
        timeout: config.PRODUCE_TIMEOUT_MS + 2000,
      })
      .toEqual([expect.objectContaining({ labels: { outcome: "lost" }, value: 1 })]);

    const ready = await app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().details.engines.kafka.status).toBe("down");
  });

  it("recovers by itself once the broker is back, without the click it gave up", async () => {
    kafka = await startKafka(kafkaOptions);
    const deadline = Date.now() + 30_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await postEvent()).statusCode;
      if (status === 202) break;
      expect(status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(status).toBe(202);
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);

    // The click given up while the broker was down is not written once it is back: lost, not counted.
    const last = `outage-${counter}`;
    const written = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
      seen.some((m) => m.key === last),
    );
    expect(written.map((m) => m.key)).toContain(last);
    expect(written.map((m) => m.key)).not.toContain(lostClick);
  });
});
