import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { buildApp } from "../api/app.ts";
import type { Config } from "../config.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { apiMetrics } from "../metrics/api.ts";
import { createRegistry } from "../metrics/registry.ts";

// GET /click when Kafka is slow: the person is sent on after CLICK_ACK_WAIT_MS, before the ack, and the click
// Kafka acknowledges later is still written and counted as `late`. A slow Kafka here is a producer that holds each
// request for PRODUCER_LINGER_MS before sending it, against the shared broker. (Kafka down, where the click is
// lost: src/ingest/broker-outage.int.test.ts.)

const suffix = randomUUID().slice(0, 8);
const ACK_WAIT_MS = 100;
const SLOW_KAFKA_MS = 1000;

interface ClickApp {
  app: FastifyInstance;
  producer: ImpressionProducer;
  registry: Registry;
}
const apps: ClickApp[] = [];

async function clickApp(config: Config): Promise<ClickApp> {
  const registry = createRegistry();
  let producer: ImpressionProducer | undefined;
  const metrics = apiMetrics(registry, () => producer?.bufferedBytes ?? 0);
  producer = createImpressionProducer(config, metrics.observeProduce);
  const app = await buildApp({ config, producer, checks: {}, metrics, logger: false });
  const made = { app, producer, registry };
  apps.push(made);
  return made;
}

const topics = {
  ...ownTopics("click-ack"),
  KAFKA_PARTITIONS: "2",
};
const base = { ...topics, API_ROLE: "ingest", CLICK_DOMAINS: "shop.example", CLICK_ACK_WAIT_MS: String(ACK_WAIT_MS) };
let slow: ClickApp;
let fast: ClickApp;

beforeAll(async () => {
  const config = testConfig(base);
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  // A producer that holds each request for a second; its deadline (PRODUCE_TIMEOUT_MS) well past that, so the ack
  // comes late but in time on a loaded machine, and its connection made beforehand by one event.
  slow = await clickApp(testConfig({ ...base, PRODUCER_LINGER_MS: String(SLOW_KAFKA_MS), PRODUCE_TIMEOUT_MS: "8000" }));
  const warmUp = { id: `warm-up-${suffix}`, adId: "ad-1" };
  expect((await slow.app.inject({ method: "POST", url: "/event", payload: warmUp })).statusCode).toBe(202);
  // Kafka answering in time: a wait long enough for the shared broker's ack on a loaded machine.
  fast = await clickApp(testConfig({ ...base, CLICK_ACK_WAIT_MS: "5000" }));
});
afterAll(async () => {
  for (const { app, producer } of apps) {
    await app.close();
    await producer.close();
  }
});

async function clicksByOutcome(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric("clicks_redirected_total")?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.outcome), v.value]));
}

/** Clicks the test made, timed from the request to the 302. */
async function timedClick({ app }: ClickApp, id: string) {
  const started = performance.now();
  const response = await app.inject({ url: `/click?id=${id}&adId=ad-1&url=https://shop.example/landing` });
  return { response, ms: performance.now() - started };
}

describe("GET /click when Kafka is slow", () => {
  it("sends the person on after CLICK_ACK_WAIT_MS, before Kafka's ack, and the click is still written (late)", async () => {
    const id = `late-${suffix}`;
    const { response, ms } = await timedClick(slow, id);
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe("https://shop.example/landing");
    expect(ms).toBeGreaterThanOrEqual(ACK_WAIT_MS - 5);
    expect(ms).toBeLessThan(SLOW_KAFKA_MS);
    // Answered while the click still waits for Kafka: not acknowledged yet.
    expect(await clicksByOutcome(slow.registry)).toEqual({});

    const written = await readTopic(testConfig(topics).KAFKA_BROKERS, topics.KAFKA_TOPIC, (seen) =>
      seen.some((m) => m.key === id),
    );
    expect(written.filter((m) => m.key === id).map((m) => JSON.parse(m.value))).toEqual([
      expect.objectContaining({ id, adId: "ad-1", kind: "click" }),
    ]);
    await expect.poll(() => clicksByOutcome(slow.registry)).toEqual({ late: 1 });
  });

  it("waits for the ack when Kafka answers within CLICK_ACK_WAIT_MS (acked)", async () => {
    const { response } = await timedClick(fast, `acked-${suffix}`);
    expect(response.statusCode).toBe(302);
    // Counted before the answer: the redirect waited for the ack.
    expect(await clicksByOutcome(fast.registry)).toEqual({ acked: 1 });
  });
});
