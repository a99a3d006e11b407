import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiProcess, startApi } from "../../test/support/api-process.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

// `npm start` runs ingest and queries in processes of their own (ecosystem.config.cjs): each answers the other's
// routes with a 404 naming where they are, and a query process yields the CPU to ingest.
const suffix = randomUUID().slice(0, 8);
const config = testConfig({ ...ownTopics("role") });
const db = useTestDatabase(() => config);
const processes: ApiProcess[] = [];
let ingest: ApiProcess;
let query: ApiProcess;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  const env = { CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE, AUTH: "off", QUERY_PORT: "3456" };
  [ingest, query] = await Promise.all([
    startApi(config, { ...env, API_ROLE: "ingest" }),
    startApi(config, { ...env, API_ROLE: "query", QUERY_NICE: "7" }),
  ]);
  processes.push(ingest, query);
});

afterAll(() => {
  for (const api of processes) api.kill();
});

/** The niceness of each thread of process `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    // After the command name, in parentheses, come fields 3 onwards.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

describe("an ingest process (API_ROLE=ingest)", () => {
  it("takes events, and answers the query routes with a 404 naming the query API's port", async () => {
    const sent = await fetch(`${ingest.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `role-${suffix}`, ts: Date.now(), userId: "u-1", adId: "ad-1" }),
    });
    expect(sent.status).toBe(202);
    for (const path of ["/stats?timeWindowMinutes=5", "/stats/timeseries?timeWindowMinutes=5&adId=a", "/"]) {
      const response = await fetch(`${ingest.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(await response.json(), path).toEqual({
        error: "not_found",
        message: `GET ${path.split("?")[0]} is served by the query API (API_ROLE=query), not by this ingest API: under npm start at port 3456 (QUERY_PORT)`,
      });
    }
    const document = (await (await fetch(`${ingest.url}/openapi.json`)).json()) as { paths: object };
    expect(Object.keys(document.paths).filter((path) => path.startsWith("/stats") || path === "/")).toEqual([]);
  });
});

describe("a query process (API_ROLE=query)", () => {
  it("serves /stats, and answers the ingest routes with a 404 naming the ingest API", async () => {
    const stats = await fetch(`${query.url}/stats?timeWindowMinutes=5`);
    expect(stats.status).toBe(200);
    const sent = await fetch(`${query.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `role-q-${suffix}`, ts: Date.now(), userId: "u-1", adId: "ad-1" }),
    });
    expect(sent.status).toBe(404);
    expect(await sent.json()).toMatchObject({
      error: "not_found",
      message: expect.stringContaining("POST /event is served by the ingest API (API_ROLE=ingest)"),
    });
  });

  it("runs every thread at QUERY_NICE, the ingest process at the niceness it was started with", () => {
    // The processes start at this test's niceness; a process only ever raises its own.
    const started = getPriority();
    const queryThreads = threadNiceness(query.child.pid as number);
    expect(queryThreads.length).toBeGreaterThan(1);
    expect(new Set(queryThreads)).toEqual(new Set([Math.max(7, started)]));
    expect(new Set(threadNiceness(ingest.child.pid as number))).toEqual(new Set([started]));
  });
});
