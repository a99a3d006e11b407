import { availableParallelism } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "../stack/paths.ts";
import { apiAppsByRole, ecosystemApps, pm2Pids } from "../stack/pm2-pids.ts";
import { type EngineProcess, spawnLogged } from "../stack/process.ts";
import { childrenRunning } from "./processes.ts";

/** The node arguments pm2 gives the `api` app (ecosystem.config.cjs), so benchmarks run what production runs. */
export function apiNodeArgs(): string[] {
  return ecosystemApps().find((app) => app.name === "api")?.node_args ?? [];
}

/** The app as `npm start` runs it: pm2-runtime on ecosystem.config.cjs, with its API and worker processes. */
export interface Pm2System {
  runtime: EngineProcess;
  /** The ingest API's processes (the `api` app). */
  apiPids: number[];
  /** The query API's (the `query` app: the same script with API_ROLE=query). */
  queryPids: number[];
  workerPids: number[];
}

/**
 * Starts pm2-runtime on ecosystem.config.cjs as stack/start.ts does (`env` names the engines, the port and
 * API_INSTANCES / WORKER_INSTANCES), and resolves once every app process runs and `healthUrl` answers. `root` is
 * the checkout whose apps run: this one, or another one compared with it in the same run.
 */
export async function startPm2Apps(
  env: NodeJS.ProcessEnv,
  stateDir: string,
  healthUrl: string,
  root = repoRoot,
): Promise<Pm2System> {
  const roles = apiAppsByRole(root);
  // The instance counts as ecosystem.config.cjs reads them (a checkout from before the query app has none).
  const cores = availableParallelism();
  const apiCount = Number(env.API_INSTANCES ?? cores);
  const queryCount = roles.query.length === 0 ? 0 : Number(env.QUERY_INSTANCES ?? 1);
  const workerCount = Number(env.WORKER_INSTANCES ?? cores);
  const pm2Home = join(stateDir, "pm2");
  const runtime = spawnLogged(
    process.execPath,
    [join(root, "node_modules/pm2/bin/pm2-runtime"), "ecosystem.config.cjs"],
    {
      cwd: root,
      env: { ...env, PM2_HOME: pm2Home },
      logFile: join(stateDir, "logs", "app.log"),
    },
  );
  const pid = runtime.child.pid as number;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const apiPids = pm2Pids(pm2Home, roles.ingest);
    const queryPids = pm2Pids(pm2Home, roles.query);
    const workerPids = childrenRunning(pid, "src/worker/main.ts");
    const healthy = await fetch(healthUrl).then(
      (r) => r.ok,
      () => false,
    );
    if (
      healthy &&
      apiPids.length === apiCount &&
      queryPids.length === queryCount &&
      workerPids.length === workerCount
    ) {
      return { runtime, apiPids, queryPids, workerPids };
    }
    if (runtime.child.exitCode !== null || Date.now() > deadline) {
      await runtime.stop(30_000);
      throw new Error(
        `pm2-runtime: ${apiPids.length}/${apiCount} api, ${queryPids.length}/${queryCount} query and ` +
          `${workerPids.length}/${workerCount} worker processes, ` +
          `healthy ${healthy}, after ${runtime.child.exitCode === null ? "90 s" : "it exited"} (log: ${runtime.logFile})`,
      );
    }
    await sleep(250);
  }
}
