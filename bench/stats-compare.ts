/**
 * bench:stats with BENCH_COMPARE_TREE: this checkout's query API and another checkout's, each its own process
 * (`node src/api/main.ts`, API_ROLE=query, as pm2 runs it), each over a database made by its own migrations and
 * holding the same 100M rows (bench/stats-data.ts, the same `until`), so the side by side measures the code and
 * its schema, not the data or the moment.
 */
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { repoRoot } from "../stack/paths.ts";
import { ecosystemApps } from "../stack/pm2-pids.ts";
import { type EngineProcess, freePort, spawnLogged, waitUntilReady } from "../stack/process.ts";
import { runInTree } from "./other-tree.ts";
import { type Dataset, insertDay, loadedUntil, waitForMerges } from "./stats-data.ts";

export interface ComparedApi {
  label: string;
  url: string;
  process: EngineProcess;
}

/**
 * The dataset's rows in `database` under `root`'s schema (its provisionStorage), unless they are there already:
 * reused when they end where the dataset ends.
 */
async function prepareSameRows(
  admin: ClickHouseClient,
  clientFor: (database: string) => ClickHouseClient,
  engineUrl: string,
  root: string,
  dataset: Dataset,
  database: string,
  logDir: string,
): Promise<void> {
  const until = (await loadedUntil(admin, dataset)) + 1;
  const copy: Dataset = { ...dataset, database };
  if ((await loadedUntil(admin, copy)) + 1 === until) return;
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await runInTree(
    root,
    'const { provisionStorage } = await import("./src/provision.ts"); const { loadConfig } = await import("./src/config.ts"); await provisionStorage(loadConfig(process.env));',
    { ...process.env, CLICKHOUSE_URL: engineUrl, CLICKHOUSE_DATABASE: database, LOG_LEVEL: "warn" },
    join(logDir, `provision-${database}.log`),
  );
  const started = performance.now();
  const client = clientFor(database);
  try {
    await insertDay(client, until, dataset.rows);
  } finally {
    await client.close();
  }
  console.log(
    `loaded the same ${dataset.label} impressions into ${database} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  await waitForMerges(admin, [database]);
}

/** One checkout's query API as its own process over `database`; resolves once it answers /stats. */
async function startQueryApi(root: string, engineUrl: string, database: string, logDir: string, label: string) {
  const port = await freePort();
  const nodeArgs = ecosystemApps(root).find((app) => app.name === "api")?.node_args ?? [];
  const api = spawnLogged(process.execPath, [...nodeArgs, "src/api/main.ts"], {
    cwd: root,
    env: {
      ...process.env,
      CLICKHOUSE_URL: engineUrl,
      CLICKHOUSE_DATABASE: database,
      PORT: String(port),
      API_ROLE: "query",
      AUTH: "off",
      METRICS: "off",
      LOG_LEVEL: "warn",
      // Sequential requests from one IP as fast as they are answered; both at the same CPU priority.
      QUERY_RATE_PER_IP: "0",
      QUERY_NICE: "0",
    },
    logFile: join(logDir, `api-${database}.log`),
  });
  const url = `http://127.0.0.1:${port}`;
  const answers = () => fetch(`${url}/stats?timeWindowMinutes=1`).then((res) => res.ok);
  await waitUntilReady(`${label}'s query API`, api, answers, 60_000);
  return { label, url, process: api };
}

/**
 * This checkout's query API over `dataset`'s database and, for each tree, that tree's over its copy of the same
 * rows (`clientFor` a database: a client to load it). Stop them with `process.stop()`.
 */
export async function startComparedApis(
  admin: ClickHouseClient,
  clientFor: (database: string) => ClickHouseClient,
  engineUrl: string,
  dataset: Dataset,
  trees: string[],
  logDir: string,
): Promise<ComparedApi[]> {
  const apis = [await startQueryApi(repoRoot, engineUrl, dataset.database, logDir, "this tree")];
  for (const [i, tree] of trees.entries()) {
    const database = `${dataset.database}_compared_${i + 1}`;
    await prepareSameRows(admin, clientFor, engineUrl, tree, dataset, database, logDir);
    apis.push(await startQueryApi(tree, engineUrl, database, logDir, tree));
  }
  return apis;
}
