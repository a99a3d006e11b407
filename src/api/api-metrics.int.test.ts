import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { apiMetrics } from "../metrics/api.ts";
import { createRegistry, type MetricsServer, serveMetrics } from "../metrics/registry.ts";
import { buildApp } from "./app.ts";

const suffix = randomUUID().slice(0, 8);
const config = testConfig({
  ...ownTopics("api-metrics"),
  KAFKA_PARTITIONS: "2",
  API_ROLE: "ingest",
});
let producer: ImpressionProducer;
let registry: Registry;
let app: FastifyInstance;
let server: MetricsServer;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  registry = createRegistry();
  const metrics = apiMetrics(registry, () => producer.bufferedBytes);
  producer = createImpressionProducer(config, metrics.observeProduce);
  app = await buildApp({ config, producer, checks: {}, metrics, logger: false });
  server = await serveMetrics(registry, "127.0.0.1", 0);
});
afterAll(async () => {
  await app?.close();
  await producer?.close();
  await server?.close();
});

const post = (url: string, payload: string, contentType = "application/json") =>
  app.inject({ method: "POST", url, headers: { "content-type": contentType }, payload });

/** The value of one series in the scrape, as Prometheus would read it. */
async function scraped(series: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("the API's metrics", () => {
  it("count accepted events by route and refused ones by code, one per event", async () => {
    expect((await post("/event", JSON.stringify(makeImpression(suffix)))).statusCode).toBe(202);
    expect((await post("/event", JSON.stringify({ id: "x" }))).statusCode).toBe(400);
    expect((await post("/event", "{")).statusCode).toBe(400);
    const ndjson = [makeImpression(suffix), makeImpression(suffix), { id: "bad" }].map((e) => JSON.stringify(e));
    const batch = await post("/events", `${ndjson.join("\n")}\n{not json\n`, "application/x-ndjson");
    expect(batch.json()).toMatchObject({ accepted: 2 });
    const { id, adId, userId } = makeImpression(suffix);
    expect((await app.inject({ url: `/pixel.gif?${new URLSearchParams({ id, adId, userId })}` })).statusCode).toBe(200);
    expect((await app.inject({ url: "/pixel.gif?id=only" })).statusCode).toBe(400);

    expect(await scraped('impressions_received_total{route="/event"}')).toBe(1);
    expect(await scraped('impressions_received_total{route="/events"}')).toBe(2);
    expect(await scraped('impressions_received_total{route="/pixel.gif"}')).toBe(1);
    expect(await scraped('impressions_rejected_total{reason="invalid_event"}')).toBe(2);
    expect(await scraped('impressions_rejected_total{reason="malformed_json"}')).toBe(2);
    expect(await scraped('impressions_rejected_total{reason="invalid_query"}')).toBe(1);
    expect(await scraped("kafka_produce_duration_seconds_count")).toBe(3);
    expect(await scraped("kafka_producer_buffered_bytes")).toBe(0);
  });

  it("time every request by route pattern, never by raw URL, and carry Node's process metrics", async () => {
    await app.inject({ url: "/nowhere?x=1" });
    expect(await scraped('http_request_duration_seconds_count{route="/event",method="POST",status_code="202"}')).toBe(
      1,
    );
    expect(await scraped('http_request_duration_seconds_count{route="unmatched",method="GET",status_code="404"}')).toBe(
      1,
    );
    expect(await scraped("process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("time produce requests, not senders: concurrent events share one request to Kafka", async () => {
    const before = (await scraped("kafka_produce_duration_seconds_count")) ?? 0;
    const receivedBefore = (await scraped('impressions_received_total{route="/event"}')) ?? 0;
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post("/event", JSON.stringify(makeImpression(suffix)))),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array(50).fill(202));
    expect(await scraped('impressions_received_total{route="/event"}')).toBe(receivedBefore + 50);
    const produceRequests = ((await scraped("kafka_produce_duration_seconds_count")) ?? 0) - before;
    expect(produceRequests).toBeGreaterThan(0);
    expect(produceRequests).toBeLessThan(50);
  });

  it("count accepted events by traffic label", async () => {
    const label = async (traffic: string) => (await scraped(`impressions_traffic_total{traffic="${traffic}"}`)) ?? 0;
    const [bots, valid, unclassified] = [await label("bot"), await label("valid"), await label("unclassified")];
    const fromServer = JSON.stringify({ ...makeImpression(suffix), userAgent: "curl/8.5.0" });
    expect((await post("/event", fromServer)).statusCode).toBe(202);
    const batch = JSON.stringify([makeImpression(suffix), makeImpression(suffix)]);
    expect((await post("/events", batch)).statusCode).toBe(202);
    const { id, adId, userId } = makeImpression(suffix);
    const desktop =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const pixel = await app.inject({
      url: `/pixel.gif?${new URLSearchParams({ id, adId, userId })}`,
      headers: { "user-agent": desktop, "sec-fetch-mode": "no-cors" },
    });
    expect(pixel.statusCode).toBe(200);
    expect([await label("bot"), await label("valid"), await label("unclassified")]).toEqual([
      bots + 1,
      valid + 1,
      unclassified + 2,
    ]);
  });

  it("count 503s by reason", async () => {
    await producer.close();
    const refused = await post("/event", JSON.stringify(makeImpression(suffix)));
    expect(refused.statusCode).toBe(503);
    expect(await scraped('ingest_unavailable_total{reason="shutting_down"}')).toBe(1);
  });
});
