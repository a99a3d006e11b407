import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { type EngineProcess, freePort, spawnLogged, waitUntilReady } from "../../stack/process.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { waitFor } from "../../test/support/wait.ts";
import type { Config } from "../config.ts";
import { encodeImpression } from "../impression/codec.ts";
import { createImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import type { WorkerHealth } from "./health.ts";

// Short enough for a test, and well under the 10 s between the consumer's lag measurements.
const STALL_SECONDS = 2;
const db = useTestDatabase(() => testConfig());
const logs = mkdtempSync(join(tmpdir(), "worker-health-"));
const processes: EngineProcess[] = [];

afterAll(async () => {
  // The stalled worker would retry its batch for 20 s after SIGTERM: nothing of it is committed, so kill it then.
  await Promise.all(processes.map((p) => p.stop(3_000)));
  rmSync(logs, { recursive: true, force: true });
});

/** A topic and group of their own, on the file's database. */
async function scenario(name: string): Promise<Config> {
  const topic = `${name}-${randomBytes(4).toString("hex")}`;
  const config = testConfig({
    CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE,
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_CONSUMER_GROUP: `${topic}-group`,
    KAFKA_PARTITIONS: "2",
  });
  await ensureTopics(config.KAFKA_BROKERS, "worker-health-test", impressionTopics(config));
  return config;
}

/** `node src/worker/main.ts` as pm2 runs it, not waited for; its metrics port is free unless `env` says. */
async function spawnWorkerProcess(config: Config, env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = spawnLogged(process.execPath, [join(repoRoot, "src/worker/main.ts")], {
    cwd: repoRoot,
    logFile: join(logs, `${config.KAFKA_TOPIC}.log`),
    env: {
      ...process.env,
      KAFKA_BROKERS: config.KAFKA_BROKERS.join(","),
      KAFKA_TOPIC: config.KAFKA_TOPIC,
      KAFKA_DLQ_TOPIC: config.KAFKA_DLQ_TOPIC,
      KAFKA_CONSUMER_GROUP: config.KAFKA_CONSUMER_GROUP,
      KAFKA_PARTITIONS: String(config.KAFKA_PARTITIONS),
      CLICKHOUSE_URL: config.CLICKHOUSE_URL,
      CLICKHOUSE_DATABASE: config.CLICKHOUSE_DATABASE,
      VALKEY_URL: config.VALKEY_URL,
      WORKER_METRICS_PORT: String(port),
      NODE_APP_INSTANCE: "0",
      WORKER_STALL_SECONDS: String(STALL_SECONDS),
      WORKER_BATCH_MAX_WAIT_MS: "100",
      LOG_LEVEL: "error",
      ...env,
    },
  });
  processes.push(proc);
  return { proc, url: `http://127.0.0.1:${port}` };
}

/** spawnWorkerProcess; resolves with its metrics port's URL once that answers. */
async function startWorkerProcess(config: Config, env: Record<string, string> = {}): Promise<string> {
  const { proc, url } = await spawnWorkerProcess(config, env);
  await waitUntilReady(`worker (${config.KAFKA_TOPIC})`, proc, () => fetch(`${url}/healthz`).then(() => true), 30_000);
  return url;
}

async function produce(config: Config, ids: string[]): Promise<void> {
  const producer = createImpressionProducer(config);
  try {
    await producer.send(
      ids.map((id) => ({ key: id, value: encodeImpression({ id, ts: Date.now(), userId: "u1", adId: "ad-health" }) })),
    );
  } finally {
    await producer.close();
  }
}

async function health(url: string): Promise<{ status: number; body: WorkerHealth; at: number }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as WorkerHealth, at: Date.now() };
}

async function stalledGauge(url: string): Promise<string | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split("\n").find((line) => line.startsWith("worker_stalled "));
}

describe.concurrent("the worker's GET /healthz", () => {
  it("turns 503 stalled once its batches cannot finish while it has lag, not before WORKER_STALL_SECONDS", async () => {
    const config = await scenario("stall");
    // Valkey unreachable: every batch fails at the claim step and is retried, nothing is committed.
    const url = await startWorkerProcess(config, { VALKEY_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(await health(url)).toMatchObject({ status: 200, body: { status: "ok", lag: null } });
    const ids = Array.from({ length: 50 }, (_, i) => `stall-${i}`);
    await produce(config, ids);

    const answers: Awaited<ReturnType<typeof health>>[] = [];
    const stalled = await waitFor("the worker to say stalled", 30_000, async () => {
      const answer = await health(url);
      answers.push(answer);
      return answer.status === 503 ? answer : undefined;
    });
    expect(stalled.body).toMatchObject({ status: "stalled", lag: ids.length, stallSeconds: STALL_SECONDS });
    expect(stalled.body.reason).toMatch(/^lag 50 and no batch committed for [\d.]+ s \(WORKER_STALL_SECONDS=2\)$/);
    expect(await stalledGauge(url)).toBe("worker_stalled 1");
    // Before that it said ok, with the lag already known for about WORKER_STALL_SECONDS: it waited, it did not
    // call the work it was given a stall.
    const before = answers.slice(0, -1);
    expect(before.every((a) => a.status === 200 && a.body.status === "ok")).toBe(true);
    const lagSeen = before.find((a) => (a.body.lag ?? 0) > 0);
    expect(lagSeen?.body.reason).toBe("consuming: lag 50");
    expect(stalled.at - (lagSeen?.at ?? stalled.at)).toBeGreaterThan(STALL_SECONDS * 1000 - 500);
  });

  it("stays 200 ok when it can work: after its batches are committed, idle with no lag for longer than the stall time", async () => {
    const config = await scenario("idle");
    const url = await startWorkerProcess(config);
    const ids = Array.from({ length: 20 }, (_, i) => `idle-${config.KAFKA_TOPIC}-${i}`);
    await produce(config, ids);
    // A lag measurement after the commit says 0 (they come every 10 s).
    const idle = await waitFor("a lag measurement of 0", 30_000, async () => {
      const answer = await health(url);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      return answer.body.lag === 0 ? answer : undefined;
    });
    expect(idle.body.lastCommitSecondsAgo).not.toBeNull();
    const result = await db.clickhouse.query({
      query: "SELECT count() AS n FROM impressions WHERE id LIKE {prefix:String}",
      query_params: { prefix: `idle-${config.KAFKA_TOPIC}-%` },
      format: "JSONEachRow",
    });
    const [row] = await result.json<{ n: string }>();
    expect(Number(row?.n)).toBe(ids.length);
    // No commit for longer than the stall time: idle, not stalled.
    await sleep(Math.max(0, (STALL_SECONDS + 0.5 - (idle.body.lastCommitSecondsAgo ?? 0)) * 1000));
    const later = await health(url);
    expect(later).toMatchObject({ status: 200, body: { status: "ok", reason: "no lag", lag: 0 } });
    expect(later.body.lastCommitSecondsAgo).toBeGreaterThan(STALL_SECONDS);
    expect(await stalledGauge(url)).toBe("worker_stalled 0");
  });
});

describe("a worker whose metrics port is taken", () => {
  it("ends with one line naming the port, WORKER_METRICS_PORT and its instance, and 0 for a free one", async () => {
    const config = await scenario("port");
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      // pm2's second instance: the base plus NODE_APP_INSTANCE 1 is the port taken.
      const { proc } = await spawnWorkerProcess(config, {
        WORKER_METRICS_PORT: String(port - 1),
        NODE_APP_INSTANCE: "1",
      });
      expect(await proc.exited).toBe(1);
      const log = readFileSync(proc.logFile, "utf8");
      expect(log).not.toMatch(/^\s+at /m);
      expect(log.trimEnd().split("\n").at(-1)).toBe(
        `worker: port 127.0.0.1:${port} (the worker's metrics, WORKER_METRICS_PORT=${port - 1} + NODE_APP_INSTANCE 1) ` +
          "is already in use: set WORKER_METRICS_PORT to a free port, or WORKER_METRICS_PORT=0 to pick any free one " +
          "(METRICS=off serves none)",
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
