import { pino } from "pino";
import type { Keyring } from "../auth/keyring.ts";
import { KeysFileError } from "../auth/keys-file.ts";
import { watchKeys } from "../auth/keys-watcher.ts";
import { configOrExit } from "../config.ts";
import { type IpRanges, IpRangesError } from "../traffic/ip-ranges.ts";
import { watchIpRanges } from "../traffic/ip-ranges-watcher.ts";
import { whenUsable } from "../usable-file.ts";
import type { WatchedFile } from "../watched-file.ts";
import { lowerPriority } from "./priority.ts";
import { roleServes } from "./role.ts";

/**
 * Composition root of the `api` process (one pm2 cluster instance). What must be right before it serves (the config,
 * the keys file, the IP ranges file) is checked before the rest is loaded (src/api/serve.ts: adapters, app, listen,
 * stop). A config error exits at once. A file it cannot use is waited for, closed (src/usable-file.ts): listening on
 * no port, the process gets no connection (pm2's cluster master sends each to the others; a readiness probe fails),
 * and it is not started again and again, each start taking CPU from the processes still serving.
 */
const config = configOrExit(process.env);
const log = pino({ level: config.LOG_LEVEL });
const serves = roleServes(config.API_ROLE);
// A query-only process yields the CPU to ingest and the workers on the same host (docs/DESIGN.md).
if (config.API_ROLE === "query" && config.QUERY_NICE > 0) {
  log.info({ nice: lowerPriority(config.QUERY_NICE) }, "query process: CPU priority lowered");
}
// Until it serves there is nothing to finish: a stop while it waits for a file ends it at once, cleanly.
const stopWaiting = (signal: NodeJS.Signals) => {
  log.info({ signal }, "stopped before serving");
  process.exit(0);
};
process.on("SIGTERM", stopWaiting).on("SIGINT", stopWaiting);
const waiting = "; waiting for it, not listening on any port until then";

// Keys first, and fail closed: with AUTH=required, no route is served until the keys file exists, is valid and has
// an active key. Until then one line says which file and why, again only when that changes.
async function startKeys(path: string): Promise<WatchedFile<Keyring>> {
  const watcher = await whenUsable(path, {
    use: () =>
      watchKeys(path, {
        onReload: (keyring) => log.info({ file: path, active: keyring.activeCount }, "keys reloaded"),
        onError: (error) => log.error({ file: path }, `${error.message}; keeping the last good keys`),
      }),
    refused: (error) => error instanceof KeysFileError,
    onRefused: (error) => {
      const where =
        error.problem === "not_found" ? ` (API_KEYS_FILE, resolved from working directory ${process.cwd()})` : "";
      log.error(
        `AUTH=required, but ${error.message}${where}: create a key with API_KEYS_FILE=${path} npm run keys -- ` +
          `create --scope ingest --name NAME, or set AUTH=off to run without keys${waiting}`,
      );
    },
  });
  log.info({ file: path, active: watcher.current().activeCount }, "keys required on every keyed route");
  return watcher;
}
const keys = config.AUTH === "off" ? undefined : await startKeys(config.API_KEYS_FILE);
if (!keys) log.warn("AUTH=off: every route is open to anyone who reaches this API");

// The operator's IP ranges, watched like the keys: a file that cannot be read at start is waited for; a broken edit
// later keeps the last good ranges.
async function startIpRanges(path: string): Promise<WatchedFile<IpRanges>> {
  const watcher = await whenUsable(path, {
    use: () =>
      watchIpRanges(path, {
        onReload: (ranges) => log.info({ file: path, ranges: ranges.listed }, "IP ranges reloaded"),
        onError: (error) => log.error({ file: path }, `${error.message}; keeping the last good ranges`),
      }),
    refused: (error) => error instanceof IpRangesError,
    onRefused: (error) =>
      log.error(`IVT_IP_RANGES_FILE: ${error.message}: fix the file, or unset IVT_IP_RANGES_FILE${waiting}`),
  });
  log.info({ file: path, ranges: watcher.current().listed }, "IP ranges of invalid traffic");
  return watcher;
}
const ipRanges =
  serves.ingest && config.IVT_CLASSIFICATION === "on" && config.IVT_IP_RANGES_FILE
    ? await startIpRanges(config.IVT_IP_RANGES_FILE)
    : undefined;

// From here a stop signal is serve's: it finishes what is in hand.
process.off("SIGTERM", stopWaiting).off("SIGINT", stopWaiting);
const { serve } = await import("./serve.ts");
await serve({ config, log, keys, ipRanges });
