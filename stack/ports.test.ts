import { execFile } from "node:child_process";
import { createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { repoRoot } from "./paths.ts";
import { assertAppPortsFree, assertEnginePortsFree, PortsInUseError } from "./ports.ts";
import { freePort } from "./process.ts";

const run = promisify(execFile);
const held: Server[] = [];

afterAll(async () => {
  await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A port something else listens on, for the length of this file. */
async function takenPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  held.push(server);
  return (server.address() as { port: number }).port;
}

/** A free port whose next one something else listens on: pm2's first and second instances of a metrics base. */
async function freeThenTaken(): Promise<number> {
  for (;;) {
    const base = await freePort();
    const server = createServer();
    const listening = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(base + 1, "127.0.0.1", () => resolve(true));
    });
    if (!listening) continue;
    held.push(server);
    return base;
  }
}

/** The error `promise` rejects with: its class and message. */
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("resolved, but a port is taken");
    },
    (error: Error) => error,
  );

describe("a port already in use, before npm start or npm test starts anything", () => {
  it("npm start's engines: one line naming each port taken, and the variables that use the engines there", async () => {
    const kafka = await takenPort();
    const clickhouse = await takenPort();
    const error = await failure(
      assertEnginePortsFree("dev", [
        { engine: "Kafka", port: kafka, use: `KAFKA_BROKERS=127.0.0.1:${kafka}` },
        { engine: "Kafka's controller", port: await freePort() },
        { engine: "Valkey", port: await freePort(), use: "VALKEY_URL=redis://127.0.0.1:1" },
        { engine: "ClickHouse", port: clickhouse, use: `CLICKHOUSE_URL=http://127.0.0.1:${clickhouse}` },
      ]),
    );
    expect(error).toBeInstanceOf(PortsInUseError);
    expect(error.message).toBe(
      `ports already in use: 127.0.0.1:${kafka} (Kafka), 127.0.0.1:${clickhouse} (ClickHouse), where npm start ` +
        "starts its own engines (another npm start?): stop what holds them, or use the engines there instead: " +
        `KAFKA_BROKERS=127.0.0.1:${kafka} CLICKHOUSE_URL=http://127.0.0.1:${clickhouse} npm start`,
    );
  });

  it("the test engines: names TEST_PORT_OFFSET and another value of it", async () => {
    const valkey = await takenPort();
    const error = await failure(assertEnginePortsFree("test", [{ engine: "Valkey", port: valkey }]));
    const offset = Number(process.env.TEST_PORT_OFFSET ?? 0);
    expect(error.message).toMatch(
      new RegExp(
        `^ports already in use: 127\\.0\\.0\\.1:${valkey} \\(Valkey\\), the test engines' ports shifted by ` +
          `TEST_PORT_OFFSET=${offset} \\(another npm test\\?\\): set TEST_PORT_OFFSET to another value from 0 to 2000, ` +
          "e\\.g\\. TEST_PORT_OFFSET=\\d+$",
      ),
    );
    await expect(assertEnginePortsFree("test", [{ engine: "Valkey", port: await freePort() }])).resolves.toBe(
      undefined,
    );
  });

  it("the app's ports: the first taken port of each variable, with the variable and the way out", async () => {
    const api = await takenPort();
    const query = String(await freePort());
    const config = (env: Record<string, string>) =>
      loadConfig({
        PORT: String(api),
        QUERY_PORT: query,
        QUERY_METRICS_PORT: "0",
        API_INSTANCES: "2",
        WORKER_INSTANCES: "1",
        ...env,
      });
    const base = await freeThenTaken();
    const metrics = base + 1;
    const error = await failure(
      assertAppPortsFree(config({ API_METRICS_PORT: String(base), WORKER_METRICS_PORT: "0" })),
    );
    expect(error.message).toBe(
      `port 127.0.0.1:${api} (the API, PORT=${api}) is already in use: another API (npm start?) may hold it; set ` +
        `PORT to a free port, e.g. PORT=${api + 1}; port 127.0.0.1:${metrics} (the API's metrics, ` +
        `API_METRICS_PORT=${base} + NODE_APP_INSTANCE 1) is already in use: set API_METRICS_PORT to a free ` +
        "port, or API_METRICS_PORT=0 to pick any free one (METRICS=off serves none)",
    );
    const free = String(await freePort());
    await expect(
      assertAppPortsFree(config({ PORT: free, API_METRICS_PORT: "0", WORKER_METRICS_PORT: String(metrics) })),
    ).rejects.toThrow(/\(the worker's metrics, WORKER_METRICS_PORT=\d+\) is already in use: set WORKER_METRICS_PORT/);
    await expect(
      assertAppPortsFree(config({ PORT: free, API_METRICS_PORT: "0", QUERY_PORT: String(api) })),
    ).rejects.toThrow(/\(the query API, QUERY_PORT=\d+\) is already in use: .* set QUERY_PORT to a free port/);
    await expect(
      assertAppPortsFree(config({ PORT: free, API_METRICS_PORT: "0", QUERY_METRICS_PORT: String(metrics) })),
    ).rejects.toThrow(/\(the query API's metrics, QUERY_METRICS_PORT=\d+\) is already in use/);
    await expect(
      assertAppPortsFree(config({ PORT: free, METRICS: "off", API_METRICS_PORT: String(metrics) })),
    ).resolves.toBe(undefined);
  });

  it("npm start with its API's port taken: exits 1 at once with that one line, no stack trace", async () => {
    const api = await takenPort();
    const error = (await failure(
      run(process.execPath, ["stack/start.ts"], {
        cwd: repoRoot,
        env: { ...process.env, PORT: String(api), API_METRICS_PORT: "0", WORKER_METRICS_PORT: "0" },
        timeout: 30_000,
      }),
    )) as Error & { code: number; stdout: string; stderr: string };
    expect(error.code).toBe(1);
    expect(error.stdout).toBe("");
    expect(error.stderr).toBe(
      `[start] port 127.0.0.1:${api} (the API, PORT=${api}) is already in use: another API (npm start?) may hold ` +
        `it; set PORT to a free port, e.g. PORT=${api + 1}\n`,
    );
  });
});
