import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { createClickHouse } from "../src/storage/clickhouse.ts";
import { repoRoot } from "../stack/paths.ts";
import { freePort } from "../stack/process.ts";
import { waitFor } from "../test/support/wait.ts";
import { buildImageTree, type ImageTree } from "./image-tree.ts";

/**
 * The image as the Dockerfile builds it, without an engine (none runs here): its tree built by buildImageTree, then
 * its entrypoint run on this machine's Node 24 for each command. A file the Dockerfile or .dockerignore leaves
 * out, a production dependency missing (or a dev one there), or a command that does not start its process fails
 * here. What it cannot show: the base image itself, file ownership, the user's rights.
 */
const out = mkdtempSync(join(tmpdir(), "image-"));
let image: ImageTree;
const name = `img-${randomBytes(4).toString("hex")}`;
const keysDir = mkdtempSync(join(tmpdir(), "image-keys-"));
const started: ChildProcess[] = [];

beforeAll(() => {
  // The npm cache first: the lock pins every version and its integrity, so the same packages either way.
  image = buildImageTree(join(repoRoot, "Dockerfile"), repoRoot, out, { npm_config_prefer_offline: "true" });
}, 300_000);

afterAll(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  const admin = createClickHouse(loadConfig({ ...inject("stackEnv") }));
  await admin.command({ query: `DROP DATABASE IF EXISTS t_${name.replace("-", "_")}` }).finally(() => admin.close());
  rmSync(out, { recursive: true, force: true });
  rmSync(keysDir, { recursive: true, force: true });
});

/** The container's environment: the image's ENV, the engines of the test stack, the caller's. */
function environment(env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    // The image's `node` is this machine's Node 24.
    PATH: [dirname(process.execPath), process.env.PATH].join(delimiter),
    HOME: tmpdir(),
    ...image.env,
    ...inject("stackEnv"),
    // The image's /keys/keys.json, here.
    API_KEYS_FILE: join(keysDir, "keys.json"),
    // Not the image's 0.0.0.0: nothing outside this machine is to reach the test's processes.
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    ...env,
  };
}

/** `docker run IMAGE ...args`, as far as it can be done without an engine. */
function run(args: string[], env: Record<string, string> = {}) {
  const [entry = "", ...entryArgs] = image.entrypoint;
  const child = spawn(join(image.root, entry), [...entryArgs, ...args], {
    cwd: join(image.root, image.workdir),
    env: environment(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, output: () => output, exit: async () => ({ code: await exited, output }) };
}

describe("the image's tree", () => {
  it("holds the production dependencies, and nothing the lock marks dev (chdb, pm2, the npm node package)", () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const modules = join(image.root, "app/node_modules");
    const installed = readdirSync(modules)
      .filter((entry) => !entry.startsWith("."))
      .flatMap((entry) =>
        entry.startsWith("@") ? readdirSync(join(modules, entry)).map((scoped) => `${entry}/${scoped}`) : [entry],
      );
    expect(installed).toEqual(expect.arrayContaining(Object.keys(pkg.dependencies)));
    expect(installed.filter((p) => !isProduction(lock, p))).toEqual([]);
    for (const dev of ["chdb", "pm2", "node", "vitest", "typescript"]) expect(installed).not.toContain(dev);
  });

  it("holds the app and its entry only: no tests, no dev stack", () => {
    expect(readdirSync(join(image.root, "app")).sort()).toEqual(["deploy", "node_modules", "package.json", "src"]);
    expect(readdirSync(join(image.root, "app/deploy"))).toEqual(["entrypoint.sh"]);
    const files = readdirSync(join(image.root, "app/src"), { recursive: true }).map(String);
    expect(files).toContain("api/main.ts");
    expect(files.filter((f) => f.endsWith(".test.ts"))).toEqual([]);
  });

  it("runs as the unprivileged node user, through the entrypoint; only the /keys RUN is not emulated", () => {
    expect(image.user).toBe("node");
    expect(image.entrypoint).toEqual(["/app/deploy/entrypoint.sh"]);
    expect(image.skippedRuns).toEqual(["mkdir -m 0700 /keys && chown node:node /keys"]);
  });
});

describe("the image's commands", () => {
  it("without a command, or an unknown one, says which there are and exits 2", async () => {
    for (const args of [[], ["serve"]]) {
      const { code, output } = await run(args).exit();
      expect(code).toBe(2);
      expect(output).toContain("usage: ingest | query | worker | keys ARGS... | dlq ARGS... | retention");
    }
  });

  it("ingest, worker and query run the pipeline: an event in is counted once, each stops on SIGTERM with 0", async () => {
    const keys = (...args: string[]) =>
      run(["keys", "create", ...args])
        .exit()
        .then(({ code, output }) => {
          expect(code, output).toBe(0);
          return output.trimEnd().split("\n").at(-1) ?? "";
        });
    const ingestKey = await keys("--scope", "ingest", "--name", "image-ingest");
    const queryKey = await keys("--scope", "query", "--name", "image-query");

    const [port, queryPort, workerMetricsPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const own = {
      KAFKA_TOPIC: name,
      KAFKA_DLQ_TOPIC: `${name}.dlq`,
      KAFKA_CONSUMER_GROUP: `${name}-group`,
      KAFKA_PARTITIONS: "2",
      CLICKHOUSE_DATABASE: `t_${name.replace("-", "_")}`,
      WORKER_BATCH_MAX_WAIT_MS: "100",
      API_METRICS_PORT: "0",
      QUERY_METRICS_PORT: "0",
      WORKER_METRICS_PORT: String(workerMetricsPort),
      PORT: String(port),
      QUERY_PORT: String(queryPort),
    };
    const worker = run(["worker"], own);
    const ingest = run(["ingest"], own);
    const query = run(["query"], own);
    const answers = async (what: string, url: string, process: ReturnType<typeof run>) =>
      waitFor(what, 60_000, async () => {
        if (process.child.exitCode !== null) throw new Error(`${what}: exited:\n${process.output()}`);
        return fetch(url).then(
          (r) => (r.ok ? true : undefined),
          () => undefined,
        );
      });
    await answers("the worker's /healthz", `http://127.0.0.1:${workerMetricsPort}/healthz`, worker);
    await answers("the ingest API's /readyz", `http://127.0.0.1:${port}/readyz`, ingest);
    await answers("the query API's /readyz", `http://127.0.0.1:${queryPort}/readyz`, query);

    // `exec`: the entrypoint's shell became Node, so a container's SIGTERM reaches the process itself.
    for (const { child } of [worker, ingest, query]) {
      expect(basename(readlinkSync(`/proc/${child.pid}/exe`))).toBe("node");
    }

    const adId = `ad-${randomUUID()}`;
    const sent = await fetch(`http://127.0.0.1:${port}/event`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ingestKey}` },
      body: JSON.stringify({ id: randomUUID(), userId: "u-1", adId }),
    });
    expect(sent.status).toBe(202);
    const counts = await waitFor("the event to be counted", 60_000, async () => {
      const answer = await fetch(`http://127.0.0.1:${queryPort}/stats?timeWindowMinutes=5`, {
        headers: { authorization: `Bearer ${queryKey}` },
      });
      const body = (await answer.json()) as Record<string, number>;
      return body[adId] ? body : undefined;
    });
    expect(counts).toEqual({ [adId]: 1 });
    // The ingest role serves no query route, the query role no ingest route.
    expect((await fetch(`http://127.0.0.1:${port}/stats?timeWindowMinutes=5`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${queryPort}/sdk.js`)).status).toBe(404);

    const retention = await run(["retention"], own).exit();
    expect(retention.code, retention.output).toBe(0);
    expect(retention.output).toContain("already keep rows 30 days");
    // The dead-letter tool ships too: it reads the topic the worker made (no dead letter in it).
    const deadLetters = await run(["dlq", "list"], own).exit();
    expect(deadLetters.code, deadLetters.output).toBe(0);

    for (const process of [ingest, query, worker]) {
      process.child.kill("SIGTERM");
      const { code, output } = await process.exit();
      expect(code, output).toBe(0);
    }
  }, 180_000);
});

/** Whether the lock installs `name` for production: its top-level entry is not marked dev. */
function isProduction(lock: { packages: Record<string, { dev?: boolean }> }, name: string): boolean {
  const entry = lock.packages[`node_modules/${name}`];
  return entry !== undefined && entry.dev !== true;
}
