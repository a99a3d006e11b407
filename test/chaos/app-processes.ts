import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "../../stack/paths.ts";
import { type EngineProcess, spawnLogged } from "../../stack/process.ts";
import { waitFor } from "../support/wait.ts";

export interface EngineUrls {
  kafkaBrokers: string[];
  valkeyUrl: string;
  clickhouseUrl: string;
}

/** The environment of a chaos run's API and workers; `extra` adds or overrides variables. */
export function chaosEnv(engines: EngineUrls, apiPort: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: engines.kafkaBrokers.join(","),
    VALKEY_URL: engines.valkeyUrl,
    CLICKHOUSE_URL: engines.clickhouseUrl,
    PORT: String(apiPort),
    LOG_LEVEL: "warn",
    // Durability and throughput of the pipeline, not keys: no keys file, whatever the developer has.
    AUTH: "off",
    // Free metrics ports: this runs beside `npm start`, which has the fixed ones.
    API_METRICS_PORT: "0",
    WORKER_METRICS_PORT: "0",
    KAFKA_PARTITIONS: "8",
    ...extra,
  };
}

/** The real API and worker processes, as pm2 would run them; workers can be crashed and come back. */
export interface AppProcesses {
  apiUrl: string;
  workerCount: number;
  /** SIGKILLs a random worker and starts it again 0.2-1.7 s later; resolves with its index once restarted. */
  crashWorker(): Promise<number>;
  /** SIGTERM to the workers (they commit and leave), then to the API. */
  stop(): Promise<void>;
}

export async function startAppProcesses(
  env: NodeJS.ProcessEnv,
  workerCount: number,
  logs: (name: string) => string,
): Promise<AppProcesses> {
  const api = spawnLogged(process.execPath, [join(repoRoot, "src/api/main.ts")], { env, logFile: logs("api") });
  // Worker i is pm2's instance i, so each has an identity of its own, as under `npm start`.
  const spawnWorker = (i: number) =>
    spawnLogged(process.execPath, [join(repoRoot, "src/worker/main.ts")], {
      env: { ...env, NODE_APP_INSTANCE: String(i) },
      logFile: logs(`worker-${i}`),
    });
  const workers: EngineProcess[] = Array.from({ length: workerCount }, (_, i) => spawnWorker(i));
  const apiUrl = `http://127.0.0.1:${env.PORT}`;
  await waitFor(
    "the API to become healthy",
    60_000,
    () =>
      fetch(`${apiUrl}/healthz`).then(
        (r) => r.ok || undefined,
        () => undefined,
      ),
    250,
  );
  return {
    apiUrl,
    workerCount,
    async crashWorker() {
      const i = Math.floor(Math.random() * workers.length);
      await workers[i]?.kill();
      await sleep(200 + Math.random() * 1500);
      workers[i] = spawnWorker(i);
      return i;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop(30_000)));
      await api.stop(10_000);
    },
  };
}
