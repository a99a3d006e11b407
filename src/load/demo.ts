import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "../../stack/paths.ts";
import { type LoadOptions, parseLoadArgs, USAGE, UsageError } from "./args.ts";
import { load, report } from "./cli.ts";

/**
 * `npm run demo [-- load flags]`: starts the system (`npm start`, in the background, logging to
 * .data/dev/logs/demo.log) unless GET /healthz already answers, then feeds it modest traffic until Ctrl-C,
 * and stops what it started. The flags are the load generator's; these defaults go first, so a flag given
 * wins, and it runs until Ctrl-C unless --duration or --events says otherwise.
 */
export const DEMO_DEFAULTS = ["--rate", "200", "--duplicates", "0.05", "--late", "0.02", "--invalid", "0.01"];
export const DEMO_LOG = join(repoRoot, ".data/dev/logs/demo.log");
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 90_000;

/** The load options of the demo: its defaults, overridden by `argv`; open-ended. Throws UsageError. */
export function demoOptions(argv: string[]): LoadOptions | "help" {
  const parsed = parseLoadArgs([...DEMO_DEFAULTS, ...argv], { openEnded: true });
  return parsed.help ? "help" : parsed.options;
}

/**
 * Where `npm start` serves the dashboard: the query API, on the host the events go to and QUERY_PORT (3001), as
 * ecosystem.config.cjs runs it; the ingest API at `url` answers no query route.
 */
export function queryApiUrl(url: string, queryPort = "3001"): string {
  const query = new URL(url);
  query.port = queryPort;
  return query.origin;
}

/** Only a stack on this machine is ours to start. */
export function isLocal(url: string): boolean {
  return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(url).hostname);
}

async function healthy(url: string): Promise<boolean> {
  return fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
    (r) => r.ok,
    () => false,
  );
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM to the process group of `npm start` (it stops the app, then the engines), SIGKILL if it lingers. */
async function stopStack(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || !groupAlive(pid)) return;
  process.stderr.write("[demo] stopping the stack it started (the app, then the engines) ...\n");
  process.kill(-pid, "SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(250);
  if (groupAlive(pid)) {
    process.stderr.write(`[demo] still running after ${STOP_TIMEOUT_MS / 1000} s: SIGKILL\n`);
    process.kill(-pid, "SIGKILL");
  }
  process.stderr.write("[demo] stopped\n");
}

async function startStack(url: string): Promise<ChildProcess> {
  mkdirSync(join(repoRoot, ".data/dev/logs"), { recursive: true });
  const log = openSync(DEMO_LOG, "a");
  process.stderr.write(`[demo] ${url}/healthz does not answer: starting the system (npm start, log ${DEMO_LOG}) ...\n`);
  // Own process group: Ctrl-C reaches the demo only, which then stops the whole group in order.
  const child = spawn("npm", ["start"], { cwd: repoRoot, stdio: ["ignore", log, log], detached: true });
  let exited: string | undefined;
  child.once("exit", (code, signal) => {
    exited = `npm start exited (${code ?? signal})`;
  });
  child.once("error", (error) => {
    exited = `npm start failed: ${error.message}`;
  });
  const began = Date.now();
  while (!(await healthy(url))) {
    if (exited) throw new Error(`${exited}; see ${DEMO_LOG}`);
    if (Date.now() - began > START_TIMEOUT_MS) {
      await stopStack(child);
      throw new Error(`${url}/healthz did not answer within ${START_TIMEOUT_MS / 1000} s; see ${DEMO_LOG}`);
    }
    await sleep(500);
  }
  process.stderr.write(`[demo] up in ${Math.round((Date.now() - began) / 1000)} s\n`);
  return child;
}

async function main(): Promise<void> {
  let options: LoadOptions | "help";
  try {
    options = demoOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`npm run demo: ${error.message}\n\n${USAGE.replace("npm run load", "npm run demo")}\n`);
    process.exit(2);
  }
  if (options === "help") {
    process.stdout.write(`npm run demo [-- flags]: starts the system unless it runs, then feeds it until Ctrl-C.
Defaults: ${DEMO_DEFAULTS.join(" ")} (a flag given wins).\n\n${USAGE.replace("npm run load", "npm run demo")}\n`);
    return;
  }
  let stack: ChildProcess | undefined;
  // Ctrl-C while the stack starts: stop what was started.
  const onEarlySigint = () => {
    void (stack ? stopStack(stack) : Promise.resolve()).then(() => process.exit(130));
  };
  process.on("SIGINT", onEarlySigint);
  try {
    if (!(await healthy(options.url))) {
      if (!isLocal(options.url)) throw new Error(`${options.url}/healthz does not answer (not local: not starting it)`);
      stack = await startStack(options.url);
    }
  } catch (error) {
    process.stderr.write(`[demo] ${(error as Error).message}\n`);
    process.exit(1);
  } finally {
    process.off("SIGINT", onEarlySigint);
  }
  const query = queryApiUrl(options.url, process.env.QUERY_PORT);
  process.stderr.write(
    `[demo] dashboard: ${query}/   API docs: ${options.url}/docs (ingest), ${query}/docs (queries)\n` +
      `[demo] sending ${options.rate ?? "unlimited"} events/s (duplicates, late and invalid ones among them); Ctrl-C stops${stack ? " the feed and the stack it started" : ""}\n`,
  );
  const summary = await load(options, { banner: false });
  const code = report(summary, options.json);
  if (stack) {
    // A second Ctrl-C while stopping is ignored: the stop runs to its end (or SIGKILL).
    process.on("SIGINT", () => undefined);
    await stopStack(stack);
  }
  process.exitCode = code;
}

if (import.meta.main) await main();
