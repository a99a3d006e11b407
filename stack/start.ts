import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, loadConfig } from "../src/config.ts";
import { describeDifference } from "../src/kafka/topics.ts";
import { provision } from "../src/provision.ts";
import { describeRetentionDifference } from "../src/storage/retention.ts";
import { unusableFile } from "./api-files.ts";
import { launchAuth } from "./auth-mode.ts";
import { repoRoot } from "./paths.ts";
import { assertAppPortsFree } from "./ports.ts";
import { spawnLogged } from "./process.ts";
import { startStack } from "./stack.ts";

/**
 * `npm start`: the engines (or those the environment names), then the topic and tables, then the
 * app's processes under pm2-runtime, in the foreground. Ctrl-C or SIGTERM stops the app first
 * (so it can flush and commit), then the engines.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  await assertAppPortsFree(config);
  const began = Date.now();
  // Keys: off on a fresh machine (said loudly), required once the keys file exists (stack/auth-mode.ts). A keys or
  // IP ranges file the API would wait for stops npm start here, saying why, before anything is started.
  const keys = launchAuth(process.env);
  const unusable = unusableFile(keys, config);
  if (unusable) throw new Error(unusable);
  console.log("[start] starting engines: Kafka, Valkey, ClickHouse ...");
  const stack = await startStack("dev");
  const env = { ...process.env, ...stack.env, AUTH: keys.auth, API_KEYS_FILE: keys.keysFile };
  console.log(`[start] engines up in ${seconds(began)}: ${JSON.stringify(stack.env)}`);

  let stopping = false;
  let app: ReturnType<typeof spawnLogged> | undefined;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.log(`[start] ${reason}: stopping the app, then the engines ...`);
    await app?.stop(60_000);
    await stack.stop();
    console.log("[start] stopped");
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));

  try {
    const provisioned = await provision(loadConfig(env));
    for (const difference of provisioned.topics) console.warn(`[start] ${describeDifference(difference)}`);
    for (const difference of provisioned.retention) console.warn(`[start] ${describeRetentionDifference(difference)}`);
  } catch (err) {
    console.error(`[start] provisioning failed: ${(err as Error).message}`);
    await shutdown("provisioning failed", 1);
    return;
  }

  // pm2's home and the app log; START_STATE_DIR moves them, so a test can run beside a real `npm start`.
  const stateDir = resolve(repoRoot, process.env.START_STATE_DIR ?? ".data/dev");
  const pm2 = join(repoRoot, "node_modules/pm2/bin/pm2-runtime");
  const logFile = join(stateDir, "logs", "app.log");
  app = spawnLogged(process.execPath, [pm2, "ecosystem.config.cjs"], {
    cwd: repoRoot,
    env: { ...env, PM2_HOME: join(stateDir, "pm2") },
    logFile,
  });
  void app.exited.then((code) => shutdown(`pm2-runtime exited (${code}); see ${logFile}`, 1));

  // Ingest and queries run in processes of their own (ecosystem.config.cjs), each on its port.
  const ingest = `http://${config.HOST}:${config.PORT}`;
  const query = `http://${config.HOST}:${config.QUERY_PORT}`;
  for (const url of [ingest, query]) {
    if (!(await healthy(`${url}/healthz`, 60_000))) {
      // A file made unusable since the check above: the API waits for it, listening on no port.
      const unusable = unusableFile(keys, config);
      const why = unusable ? `: it waits, not listening, for a usable file: ${unusable}` : "";
      await shutdown(`the API did not answer ${url}/healthz within 60s${why} (see ${logFile})`, 1);
      return;
    }
  }
  console.log(
    `[start] ready in ${seconds(began)}: ingest API ${ingest} (POST /event, POST /events), ` +
      `query API ${query} (GET /stats, dashboard at /); app log ${logFile}`,
  );
  // Last, so it is what the terminal shows.
  if (keys.banner) {
    const rule = `[start] ${"=".repeat(100)}`;
    console.log([rule, ...keys.banner.map((line) => `[start] ${line}`), rule].join("\n"));
  } else if (keys.auth === "off") {
    console.log("[start] AUTH=off: every route is open to anyone who can reach the API");
  } else {
    console.log(`[start] keys required (AUTH=${keys.auth}), from ${keys.keysFile}`);
  }
}

async function healthy(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return true;
    await sleep(250);
  }
  return false;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError || err instanceof Error ? `[start] ${err.message}` : err);
  process.exit(1);
});
