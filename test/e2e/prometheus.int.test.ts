import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Producer, stringSerializers } from "@platformatic/kafka";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import { encodeImpression } from "../../src/impression/codec.ts";
import { createImpressionProducer } from "../../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";
import { apiMetrics } from "../../src/metrics/api.ts";
import { createRegistry, serveMetrics } from "../../src/metrics/registry.ts";
import { workerMetrics } from "../../src/metrics/worker.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { freePort } from "../../stack/process.ts";
import { startPrometheus } from "../../stack/prometheus.ts";
import { useTestDatabase } from "../support/clickhouse.ts";
import { testConfig } from "../support/config.ts";
import { makeImpression } from "../support/impressions.ts";
import { waitFor } from "../support/wait.ts";

// The books balance, read the way an operator reads them: one API and two workers, each serving its own
// metrics port, scraped by a real Prometheus; a known mix of events goes in, PromQL must add up.

const name = `prom-${randomBytes(4).toString("hex")}`;
const db = useTestDatabase(() =>
  testConfig({
    API_ROLE: "ingest",
    KAFKA_TOPIC: name,
    KAFKA_DLQ_TOPIC: `${name}.dlq`,
    KAFKA_CONSUMER_GROUP: `${name}-group`,
    KAFKA_PARTITIONS: "4",
    WORKER_BATCH_MAX_WAIT_MS: "100",
  }),
);
const logger = pino({ level: "warn" });
const dir = mkdtempSync(join(tmpdir(), "prometheus-test-"));
const closers: (() => Promise<unknown>)[] = [];
let prometheus: string;
let api: string;

beforeAll(async () => {
  const { config } = db;
  await ensureTopics(config.KAFKA_BROKERS, "prometheus-test", impressionTopics(config));
  const targets = { api: [] as string[], worker: [] as string[] };

  const apiRegistry = createRegistry();
  const producer = createImpressionProducer(config);
  const app = await buildApp({
    config,
    producer,
    checks: {},
    metrics: apiMetrics(apiRegistry, () => producer.bufferedBytes),
    logger: false,
  });
  api = await app.listen({ host: "127.0.0.1", port: 0 });
  const apiMetricsServer = await serveMetrics(apiRegistry, "127.0.0.1", 0);
  targets.api.push(`127.0.0.1:${apiMetricsServer.port}`);
  closers.push(
    () => producer.close(),
    () => app.close(),
    () => apiMetricsServer.close(),
  );

  for (let i = 0; i < 2; i++) {
    const registry = createRegistry();
    const worker = createWorker(config, logger, undefined, workerMetrics(registry));
    await worker.start();
    const server = await serveMetrics(registry, "127.0.0.1", 0);
    targets.worker.push(`127.0.0.1:${server.port}`);
    closers.push(
      () => worker.stop(),
      () => server.close(),
    );
  }

  const configFile = join(dir, "prometheus.yml");
  const jobs = Object.entries(targets).map(
    ([job, list]) =>
      `  - job_name: ${job}\n    static_configs:\n      - targets: [${list.map((t) => `"${t}"`).join(", ")}]`,
  );
  writeFileSync(configFile, `global:\n  scrape_interval: 1s\nscrape_configs:\n${jobs.join("\n")}\n`);
  const started = await startPrometheus({
    configFile,
    port: await freePort(),
    dataDir: join(dir, "data"),
    logFile: join(dir, "prometheus.log"),
  });
  prometheus = started.url;
  closers.push(() => started.stop());
}, 120_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  rmSync(dir, { recursive: true, force: true });
});

/** One number from PromQL, as an operator's dashboard would read it. */
async function promql(query: string): Promise<number | undefined> {
  const response = await fetch(`${prometheus}/api/v1/query?${new URLSearchParams({ query })}`);
  const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
  const [first] = body.data.result;
  return first === undefined ? undefined : Number(first.value[1]);
}

async function produceStraight(records: { key: string; value: string }[]): Promise<void> {
  const producer = new Producer({
    clientId: "prometheus-test",
    bootstrapBrokers: db.config.KAFKA_BROKERS,
    serializers: stringSerializers,
  });
  await producer.send({ messages: records.map((r) => ({ topic: db.config.KAFKA_TOPIC, ...r })) });
  await producer.close();
}

describe("metrics in a real Prometheus", () => {
  it("every target is up and the books balance: consumed = counted + duplicates + dead-lettered = what was sent", async () => {
    // 300 distinct events through the API, then straight to the topic: 100 copies keyed as the API keys them,
    // 50 copies keyed elsewhere (other partitions), and 11 poison messages.
    const events = Array.from({ length: 300 }, () => makeImpression(name));
    for (const batch of [events.slice(0, 150), events.slice(150)]) {
      const response = await fetch(`${api}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(batch),
      });
      expect(response.status).toBe(202);
    }
    await produceStraight([
      ...events.slice(0, 100).map((e) => ({ key: e.id, value: encodeImpression(e) })),
      ...events.slice(100, 150).map((e) => ({ key: `elsewhere-${e.id}`, value: encodeImpression(e) })),
      ...Array.from({ length: 5 }, (_, i) => ({ key: `bad-${i}`, value: "{not json" })),
      ...Array.from({ length: 5 }, (_, i) => ({ key: `invalid-${i}`, value: JSON.stringify({ id: `x${i}` }) })),
      { key: "empty", value: "" },
    ]);
    const sent = 300 + 100 + 50 + 11;

    // Every target up at the same scrape: on a loaded machine one scrape may miss its 1 s deadline now and then.
    await waitFor("Prometheus to see every message consumed, every target up", 60_000, async () =>
      (await promql("sum(impressions_consumed_total)")) === sent && (await promql("count(up == 1)")) === 3
        ? true
        : undefined,
    );
    expect(await promql('sum(impressions_received_total{route="/events"})')).toBe(300);
    const books = {
      consumed: await promql("sum(impressions_consumed_total)"),
      counted: await promql("sum(impressions_counted_total)"),
      duplicates: await promql("sum(impressions_duplicates_total)"),
      deadLettered: await promql("sum(impressions_dead_lettered_total)"),
      invalid: await promql('sum(impressions_dead_lettered_total{reason="invalid_impression"})'),
      unbalanced: await promql(
        "sum(impressions_consumed_total) - (sum(impressions_counted_total) + sum(impressions_duplicates_total)" +
          " + sum(impressions_dead_lettered_total))",
      ),
    };
    expect(books).toEqual({
      consumed: sent,
      counted: 300,
      duplicates: 150,
      deadLettered: 11,
      invalid: 5,
      unbalanced: 0,
    });

    const stored = await db.clickhouse.query({
      query: "SELECT uniqExact(id) AS n FROM impressions WHERE startsWith(id, {prefix:String})",
      query_params: { prefix: `id-${name}-` },
      format: "JSONEachRow",
    });
    const [row] = await stored.json<{ n: string }>();
    expect(Number(row?.n)).toBe(books.counted);
    expect(await promql('sum(worker_step_duration_seconds_count{step="insert"})')).toBeGreaterThan(0);
  });
});
