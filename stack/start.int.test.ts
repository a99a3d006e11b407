import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, inject, it } from "vitest";
import { processIsAlive } from "../src/dedup/lease-holder.ts";
import { waitFor } from "../test/support/wait.ts";
import { repoRoot } from "./paths.ts";
import { freePort } from "./process.ts";

const run = promisify(execFile);

// `npm start` (stack/start.ts) as a user runs it, pointed at the test stack's engines: what it starts must
// take an event in, count it, and leave no process behind when stopped.
const id = randomUUID().slice(0, 8);
const stateDir = mkdtempSync(join(tmpdir(), "npm-start-"));

afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** Every process below `root`, from `ps`. */
async function descendants(root: number): Promise<number[]> {
  const { stdout } = await run("ps", ["-e", "-o", "pid=,ppid="]);
  const children = new Map<number, number[]>();
  for (const line of stdout.trim().split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(root);
  return found;
}

it("starts the ingest API, the query API and workers, counts an event end to end, and stops cleanly on SIGTERM", async () => {
  const port = await freePort();
  const queryPort = await freePort();
  const start = spawn(process.execPath, ["stack/start.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...inject("stackEnv"),
      PORT: String(port),
      QUERY_PORT: String(queryPort),
      QUERY_METRICS_PORT: "0",
      API_INSTANCES: "1",
      WORKER_INSTANCES: "1",
      KAFKA_TOPIC: `start-${id}`,
      KAFKA_DLQ_TOPIC: `start-${id}.dlq`,
      KAFKA_PARTITIONS: "2",
      KAFKA_CONSUMER_GROUP: `start-${id}`,
      CLICKHOUSE_DATABASE: `start_${id}`,
      START_STATE_DIR: stateDir,
      API_KEYS_FILE: join(stateDir, "keys.json"),
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  start.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  start.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => start.once("exit", (code) => resolve(code)));
  try {
    await waitFor(
      "[start] ready",
      90_000,
      async () => {
        if (start.exitCode !== null) throw new Error(`npm start exited (${start.exitCode}):\n${output}`);
        return output.includes("[start] ready") ? true : undefined;
      },
      250,
    );
    const url = `http://127.0.0.1:${port}`;
    const queryUrl = `http://127.0.0.1:${queryPort}`;
    expect(output).toContain(`ingest API ${url} (POST /event, POST /events), query API ${queryUrl} (GET /stats`);
    const adId = `ad-start-${id}`;
    const sent = await fetch(`${url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `start-${id}`, ts: Date.now(), userId: "u-1", adId }),
    });
    expect(sent.status).toBe(202);

    const counts = await waitFor(
      "the event in /stats",
      60_000,
      async () => {
        const body = (await (await fetch(`${queryUrl}/stats?timeWindowMinutes=5`)).json()) as Record<string, number>;
        return adId in body ? body : undefined;
      },
      250,
    );
    expect(counts).toEqual({ [adId]: 1 });
    // The ingest API serves no query: a flood of them cannot reach it.
    expect((await fetch(`${url}/stats?timeWindowMinutes=5`)).status).toBe(404);

    const processes = await descendants(start.pid as number);
    // pm2-runtime, one ingest API, one query API and one worker at least.
    expect(processes.length).toBeGreaterThanOrEqual(4);
    start.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("[start] stopped");
    expect(processes.filter(processIsAlive)).toEqual([]);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    await expect(fetch(`${queryUrl}/healthz`)).rejects.toThrow();
  } finally {
    // On a failure, leave nothing running: pm2-runtime and the apps too, not only start.ts.
    for (const pid of await descendants(start.pid as number)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    if (start.exitCode === null) start.kill("SIGKILL");
  }
}, 180_000);
