import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ApiProcess, startApi } from "../../test/support/api-process.ts";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { MINUTE_MS } from "../stats/window.ts";

// The attack that once starved ingest (docs/DESIGN.md, "Queries cannot starve ingest"), as npm start now runs the
// API: a flood of the most expensive queries allowed against a query process, /event to an ingest process meanwhile.
const suffix = randomUUID().slice(0, 8);
const config = testConfig({ ...ownTopics("isolation") });
const db = useTestDatabase(() => config);
const processes: ApiProcess[] = [];
const ADS = Array.from({ length: 20 }, (_, i) => `ad-${i}`);
const FLOOD_MS = 8_000;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  // Every ad in every minute of the series' window: the largest answer a series may have.
  const now = Date.now();
  const rows = ADS.flatMap((adId, a) =>
    Array.from({ length: 1000 }, (_, m) => ({ id: `${a}-${m}`, ts: now - m * MINUTE_MS, adId, userId: `u-${m}` })),
  );
  for (let i = 0; i < rows.length; i += 10_000) await insertImpressions(db.clickhouse, rows.slice(i, i + 10_000));
});

afterAll(() => {
  for (const api of processes) api.kill();
});

/** Runs `request` in `concurrency` loops until `until`, keeping each answer's status and time. */
async function loop(concurrency: number, until: number, request: () => Promise<Response>) {
  const answers: { status: number; ms: number }[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const started = performance.now();
        const status = await request().then(
          async (response) => {
            await response.arrayBuffer();
            return response.status;
          },
          () => 0,
        );
        answers.push({ status, ms: performance.now() - started });
      }
    }),
  );
  return answers;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0;

it("a flood of the largest allowed queries leaves /event on the ingest process answered, within its timeout", async () => {
  const env = { CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE, AUTH: "off" };
  const [ingest, query] = await Promise.all([
    startApi(config, { ...env, API_ROLE: "ingest" }),
    // No per-client rate limit (20/s while AUTH=off): the flood must reach the query process's own limits.
    startApi(config, { ...env, API_ROLE: "query", QUERY_RATE_PER_IP: "0" }),
  ]);
  processes.push(ingest, query);
  const series = `${query.url}/stats/timeseries?timeWindowMinutes=999&${ADS.map((ad) => `adId=${ad}`).join("&")}`;
  const floods = [
    series,
    `${query.url}/stats/reach?timeWindowMinutes=1440`,
    `${query.url}/stats?timeWindowMinutes=43200`,
  ];
  let sent = 0;
  const event = () =>
    fetch(`${ingest.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `iso-${suffix}-${sent++}`, ts: Date.now(), userId: "u-1", adId: "ad-1" }),
    });

  // The same senders alone first, for comparison.
  const alone = (await loop(4, Date.now() + FLOOD_MS / 2, event)).map((e) => e.ms);
  const until = Date.now() + FLOOD_MS;
  const [events, queries] = await Promise.all([
    loop(4, until, event),
    loop(24, until, () => fetch(floods[Math.floor(Math.random() * floods.length)] as string)),
  ]);

  const latencies = events.map((e) => e.ms);
  const statuses = (answers: { status: number }[]) =>
    Object.fromEntries(
      [...new Set(answers.map((a) => a.status))].map((s) => [s, answers.filter((a) => a.status === s).length]),
    );
  console.log(
    `/event alone: ${alone.length} requests, p50 ${percentile(alone, 0.5).toFixed(0)} ms, ` +
      `p99 ${percentile(alone, 0.99).toFixed(0)} ms; during the flood:`,
  );
  console.log(
    `/event during the flood: ${events.length} requests, ${JSON.stringify(statuses(events))}, ` +
      `p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${percentile(latencies, 0.99).toFixed(0)} ms, ` +
      `max ${Math.max(...latencies).toFixed(0)} ms; queries: ${JSON.stringify(statuses(queries))}`,
  );
  // Every event acknowledged, none near PRODUCE_TIMEOUT_MS (2 s), the query API answering or shedding, never failing.
  expect(statuses(events)).toEqual({ 202: events.length });
  expect(Math.max(...latencies)).toBeLessThan(2000);
  expect(queries.filter((q) => q.status !== 200 && q.status !== 503)).toEqual([]);
  expect(queries.some((q) => q.status === 200)).toBe(true);
}, 60_000);
