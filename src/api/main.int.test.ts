import { randomUUID } from "node:crypto";
import { type AddressInfo, createServer, type Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiProcess, spawnApi, startApi } from "../../test/support/api-process.ts";
import { testConfig } from "../../test/support/config.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { postHead, rawSender } from "../../test/support/raw-http.ts";

// The api process as pm2 runs it: `node src/api/main.ts`, stopped with SIGTERM while requests are in flight.
const topic = `api-main-${randomUUID().slice(0, 8)}`;
const config = testConfig({ KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq` });
let api: ApiProcess;

beforeAll(async () => {
  api = await startApi(config, { KAFKA_PARTITIONS: "2", API_ROLE: "ingest", AUTH: "off" });
});

afterAll(() => api?.kill());

/** Distinct ids on the topic, read until `expected` of them arrived (or 10 s passed). */
async function countOnTopic(expected: number): Promise<number> {
  const distinct = (seen: { key: string }[]) => new Set(seen.map((m) => m.key)).size;
  return distinct(await readTopic(config.KAFKA_BROKERS, topic, (seen) => distinct(seen) >= expected));
}

describe("api process", () => {
  it("on SIGTERM answers the requests it received, every 2xx is on Kafka, then exits 0", async () => {
    // One request first, so the producer is connected and the requests below are in flight at SIGTERM.
    const warmUp = await fetch(`${api.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "stop-warm-up", ts: Date.now(), userId: "u1", adId: "ad-1" }),
    });
    expect(warmUp.status).toBe(202);
    const batches = Array.from({ length: 20 }, (_, b) =>
      Array.from({ length: 200 }, (_, i) => ({ id: `stop-${b}-${i}`, ts: Date.now(), userId: "u1", adId: "ad-1" })),
    );
    const responses = batches.map((events) =>
      fetch(`${api.url}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(events),
      }).then(
        async (r) => ({ status: r.status, body: await r.json() }),
        // A request still on its way when the server stopped listening never started: the sender retries it.
        () => ({ status: 0, body: undefined }),
      ),
    );
    await sleep(50);
    const exited = api.exit();
    api.child.kill("SIGTERM");

    const answers = await Promise.all(responses);
    for (const answer of answers) expect([0, 202, 503]).toContain(answer.status);
    const accepted = answers
      .filter((a) => a.status === 202)
      .reduce((sum, a) => sum + (a.body as { accepted: number }).accepted, 0);
    expect(accepted).toBeGreaterThan(0);

    const { code } = await exited;
    expect(code).toBe(0);
    expect(await countOnTopic(accepted + 1)).toBe(accepted + 1);
  });
});

describe("api process with a port already in use", () => {
  const held: Server[] = [];
  afterAll(() => Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve)))));
  const takenPort = async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    held.push(server);
    return (server.address() as AddressInfo).port;
  };

  // A second API beside `npm start` (a query-only one, say) meets the first one's ports.
  it("ends with one line naming the metrics port, API_METRICS_PORT and 0 for a free one; no stack trace", async () => {
    const port = await takenPort();
    const api = await spawnApi(config, { API_ROLE: "query", AUTH: "off", API_METRICS_PORT: String(port) });
    const { code, output } = await api.exit();
    expect(code).toBe(1);
    expect(output).not.toMatch(/^\s+at /m);
    expect(output.trimEnd().split("\n").at(-1)).toBe(
      `api: port 127.0.0.1:${port} (the API's metrics, API_METRICS_PORT=${port}) is already in use: set ` +
        "API_METRICS_PORT to a free port, or API_METRICS_PORT=0 to pick any free one (METRICS=off serves none)",
    );
  });

  it("ends with one line naming the API's port and PORT; no stack trace", async () => {
    const port = await takenPort();
    const api = await spawnApi(config, { API_ROLE: "query", AUTH: "off", PORT: String(port), METRICS: "off" });
    const { code, output } = await api.exit();
    expect(code).toBe(1);
    expect(output).not.toMatch(/^\s+at /m);
    expect(output.trimEnd().split("\n").at(-1)).toBe(
      `api: port 127.0.0.1:${port} (the API, PORT=${port}) is already in use: another API (npm start?) may hold ` +
        `it; set PORT to a free port, e.g. PORT=${port + 1}`,
    );
  });
});

describe("api process stopped while senders stall", () => {
  let stalling: ApiProcess;
  beforeAll(async () => {
    stalling = await startApi(config, {
      KAFKA_PARTITIONS: "2",
      API_ROLE: "ingest",
      AUTH: "off",
      // A request waits half a second for its produce request to leave: it is still waiting at the SIGTERM.
      PRODUCER_LINGER_MS: "500",
      // Long budgets: only the stop may end these senders.
      BODY_GRACE_MS: "60000",
      HTTP_HEADERS_TIMEOUT_MS: "60000",
    });
  });
  afterAll(() => stalling?.kill());

  it("on SIGTERM cuts a stalled body and stalled headers at once, answers the request in flight, and exits 0", async () => {
    const { port } = new URL(stalling.url);
    const warmUp = await fetch(`${stalling.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "stall-warm-up", ts: Date.now(), userId: "u1", adId: "ad-1" }),
    });
    expect(warmUp.status).toBe(202);
    const stalledBody = await rawSender(Number(port), `${postHead("/events", 8 * 1024 * 1024)}[`);
    const stalledHeaders = await rawSender(Number(port), "POST /events HTTP/1.1\r\nHost: localhost\r\n");
    // A whole batch in one write, read by the server well before the stop, its ack still to come at it (the linger).
    const events = Array.from({ length: 1_000 }, (_, i) => ({
      id: `stall-${i}`,
      ts: Date.now(),
      userId: "u1",
      adId: "ad-1",
    }));
    const batch = JSON.stringify(events);
    const inFlight = await rawSender(Number(port), `${postHead("/events", Buffer.byteLength(batch))}${batch}`);
    await sleep(250);
    const exited = stalling.exit();
    const stoppedAt = Date.now();
    stalling.child.kill("SIGTERM");

    const answer = await inFlight.outcome;
    expect(answer).toMatchObject({ status: 202, body: { accepted: 1_000, rejected: [] } });
    const cut = await stalledBody.outcome;
    expect(cut.status === undefined || cut.body?.error === "shutting_down", JSON.stringify(cut)).toBe(true);
    await stalledHeaders.outcome;
    const { code } = await exited;
    expect(code).toBe(0);
    // Without the cut, the stop waited for these senders until close-with-grace gave up (8 s, exit 1).
    expect(Date.now() - stoppedAt).toBeLessThan(3_000);
    const onTopic = new Set<string>();
    await readTopic(config.KAFKA_BROKERS, topic, (seen) => {
      const key = seen.at(-1)?.key ?? "";
      if (key.startsWith("stall-")) onTopic.add(key);
      return onTopic.size >= 1_001;
    });
    expect(onTopic.size).toBe(1_001);
  });
});
