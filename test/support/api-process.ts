import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import type { Config } from "../../src/config.ts";
import { repoRoot } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { waitFor } from "./wait.ts";

/** A running `node src/api/main.ts`: its process, its URL and what it printed so far. */
export interface ApiProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Resolves when the process exits, with its code and everything it printed. */
  exit(): Promise<{ code: number | null; output: string }>;
  kill(): void;
}

/**
 * `node src/api/main.ts` as pm2 runs it, on a free port, against the engines of `config` (the test stack's)
 * with `env` over them; it is not waited for (startApi is). The caller kills it when its test ends.
 */
export async function spawnApi(config: Config, env: Record<string, string> = {}): Promise<ApiProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["src/api/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      KAFKA_BROKERS: config.KAFKA_BROKERS.join(","),
      KAFKA_TOPIC: config.KAFKA_TOPIC,
      KAFKA_DLQ_TOPIC: config.KAFKA_DLQ_TOPIC,
      CLICKHOUSE_URL: config.CLICKHOUSE_URL,
      CLICKHOUSE_DATABASE: config.CLICKHOUSE_DATABASE,
      VALKEY_URL: config.VALKEY_URL,
      API_METRICS_PORT: "0",
      LOG_LEVEL: "warn",
      PORT: String(port),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk;
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exit: async () => ({ code: await exited, output }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** spawnApi, resolved once the process answers /healthz; fails with its output if it exits first. */
export async function startApi(config: Config, env: Record<string, string> = {}): Promise<ApiProcess> {
  const api = await spawnApi(config, env);
  try {
    await waitFor("the api to answer /healthz", 30_000, async () => {
      if (api.child.exitCode !== null) throw new Error(`the api exited with ${api.child.exitCode}:\n${api.output()}`);
      return fetch(`${api.url}/healthz`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      );
    });
  } catch (error) {
    api.kill();
    throw error;
  }
  return api;
}
