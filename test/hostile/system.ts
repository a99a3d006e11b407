import { mkdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { childrenRunning } from "../../bench/processes.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { repoRoot } from "../../stack/paths.ts";
import { apiAppsByRole, pm2Pids } from "../../stack/pm2-pids.ts";
import { freePort, spawnLogged } from "../../stack/process.ts";
import type { StackEnv } from "../../stack/stack.ts";
import { runKeysCli } from "../support/keys.ts";

/** The whole system as `npm start` runs it, with keys required, and the keys a publisher, a dashboard and a tenant hold. */
export interface HostileSystem {
  apiUrl: string;
  queryUrl: string;
  keysFile: string;
  ingestKey: string;
  queryKey: string;
  /** A tenant's query key: it reads the ads the valid load sends (ad-*) only. */
  tenantQueryKey: string;
  /** Ingest API processes pm2 runs (ecosystem.config.cjs: API_INSTANCES, else one per core). */
  apiInstances: number;
  /** Query API processes pm2 runs (QUERY_INSTANCES, else 1). */
  queryInstances: number;
  /** The app's configuration, as its processes read it from the environment. */
  config: Config;
  /** The ingest API processes pm2 runs now. */
  apiPids(): number[];
  /** The query API processes (API_ROLE=query) pm2 runs now. */
  queryPids(): number[];
  /** SIGTERM to `npm start` (it stops the app, then exits), and nothing of it left running. */
  stop(): Promise<void>;
}

export interface SystemOptions {
  engines: StackEnv;
  /** pm2's home, the logs and the keys file. */
  stateDir: string;
  /** More of the app's environment (a topic and database of its own on shared engines). */
  env?: Record<string, string>;
}

/**
 * Creates an ingest key, a query key and a tenant's query key with the keys CLI, then runs `node stack/start.ts` (what `npm start` runs)
 * on `engines`, on free ports (the ingest and the query API's, and the metrics ports), with `stateDir` for pm2's home
 * and the keys file; resolves once it says ready and pm2 runs every API process.
 */
export async function startSystem(options: SystemOptions): Promise<HostileSystem> {
  mkdirSync(options.stateDir, { recursive: true });
  const keysFile = join(options.stateDir, "keys.json");
  const ingestKey = runKeysCli(keysFile, "create", "--scope", "ingest", "--name", "publisher");
  const queryKey = runKeysCli(keysFile, "create", "--scope", "query", "--name", "dashboard");
  const tenantQueryKey = runKeysCli(keysFile, "create", "--scope", "query", "--name", "tenant", "--ads", "ad-*");
  const [port, queryPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...options.engines,
    PORT: String(port),
    QUERY_PORT: String(queryPort),
    // This runs beside `npm start` and the tests, which hold the fixed metrics ports.
    API_METRICS_PORT: "0",
    WORKER_METRICS_PORT: "0",
    QUERY_METRICS_PORT: "0",
    START_STATE_DIR: options.stateDir,
    API_KEYS_FILE: keysFile,
    LOG_LEVEL: "warn",
    ...options.env,
  };
  const apiInstances = Number(env.API_INSTANCES ?? availableParallelism());
  const queryInstances = Number(env.QUERY_INSTANCES ?? 1);
  const logFile = join(options.stateDir, "logs", "start.log");
  const start = spawnLogged(process.execPath, ["stack/start.ts"], { cwd: repoRoot, env, logFile });
  const startPid = start.child.pid as number;
  const apps = apiAppsByRole();
  const pm2Home = join(options.stateDir, "pm2");
  const apiPids = () => pm2Pids(pm2Home, apps.ingest);
  const queryPids = () => pm2Pids(pm2Home, apps.query);
  const stop = async () => {
    const all = descendants(startPid);
    await start.stop(90_000);
    for (const pid of all) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone, as it should be.
      }
    }
  };
  try {
    for (const deadline = Date.now() + 120_000; ; await sleep(250)) {
      if (start.child.exitCode !== null) throw new Error(`npm start exited (${start.child.exitCode}); see ${logFile}`);
      const ready = readFileSync(logFile, "utf8").includes("[start] ready");
      if (ready && apiPids().length === apiInstances && queryPids().length === queryInstances) break;
      if (Date.now() > deadline) {
        throw new Error(
          `npm start not ready with ${apiInstances} ingest and ${queryInstances} query API processes in 120 s; see ${logFile}`,
        );
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    queryUrl: `http://127.0.0.1:${queryPort}`,
    keysFile,
    ingestKey,
    queryKey,
    tenantQueryKey,
    apiInstances,
    queryInstances,
    config: loadConfig(env),
    apiPids,
    queryPids,
    stop,
  };
}

function descendants(pid: number): number[] {
  return childrenRunning(pid, "").flatMap((child) => [child, ...descendants(child)]);
}
