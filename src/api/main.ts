import { pino } from "pino";
import type { Keyring } from "../auth/keyring.ts";
import { KeysFileError } from "../auth/keys-file.ts";
import { watchKeys } from "../auth/keys-watcher.ts";
import { configOrExit } from "../config.ts";
import { type IpRanges, IpRangesError } from "../traffic/ip-ranges.ts";
import { watchIpRanges } from "../traffic/ip-ranges-watcher.ts";
import type { WatchedFile } from "../watched-file.ts";
import { lowerPriority } from "./priority.ts";
import { roleServes } from "./role.ts";

/**
 * Composition root of the `api` process (one pm2 cluster instance). What can refuse the start (the config, the keys
 * file, the IP ranges file) is checked before the rest is loaded (src/api/serve.ts: adapters, app, listen, stop): a
 * process that cannot start exits in about 0.2 s of CPU instead of 0.9 s, so pm2 restarting it again and again (a
 * keys file gone) takes little from the processes still serving.
 */
const config = configOrExit(process.env);
const log = pino({ level: config.LOG_LEVEL });
const serves = roleServes(config.API_ROLE);
// A query-only process yields the CPU to ingest and the workers on the same host (docs/DESIGN.md).
if (config.API_ROLE === "query" && config.QUERY_NICE > 0) {
  log.info({ nice: lowerPriority(config.QUERY_NICE) }, "query process: CPU priority lowered");
}

// Keys first, and fail closed: with AUTH=required, a keys file that is missing, unreadable, invalid, names no key
// or has every key revoked stops the process here with one line saying which file and why.
function startKeys(path: string): WatchedFile<Keyring> {
  try {
    const watcher = watchKeys(path, {
      onReload: (keyring) => log.info({ file: path, active: keyring.activeCount }, "keys reloaded"),
      onError: (error) => log.error({ file: path }, `${error.message}; keeping the last good keys`),
    });
    log.info({ file: path, active: watcher.current().activeCount }, "keys required on every keyed route");
    return watcher;
  } catch (error) {
    if (!(error instanceof KeysFileError)) throw error;
    const where =
      error.problem === "not_found" ? ` (API_KEYS_FILE, resolved from working directory ${process.cwd()})` : "";
    log.fatal(
      `AUTH=required, but ${error.message}${where}: create a key with API_KEYS_FILE=${path} npm run keys -- ` +
        "create --scope ingest --name NAME, or set AUTH=off to run without keys",
    );
    process.exit(1);
  }
}
const keys = config.AUTH === "off" ? undefined : startKeys(config.API_KEYS_FILE);
if (!keys) log.warn("AUTH=off: every route is open to anyone who reaches this API");

// The operator's IP ranges, watched like the keys: a file that cannot be read at start stops the process; a broken
// edit later keeps the last good ranges.
function startIpRanges(path: string): WatchedFile<IpRanges> {
  try {
    const watcher = watchIpRanges(path, {
      onReload: (ranges) => log.info({ file: path, ranges: ranges.listed }, "IP ranges reloaded"),
      onError: (error) => log.error({ file: path }, `${error.message}; keeping the last good ranges`),
    });
    log.info({ file: path, ranges: watcher.current().listed }, "IP ranges of invalid traffic");
    return watcher;
  } catch (error) {
    if (!(error instanceof IpRangesError)) throw error;
    log.fatal(`IVT_IP_RANGES_FILE: ${error.message}`);
    process.exit(1);
  }
}
const ipRanges =
  serves.ingest && config.IVT_CLASSIFICATION === "on" && config.IVT_IP_RANGES_FILE
    ? startIpRanges(config.IVT_IP_RANGES_FILE)
    : undefined;

const { serve } = await import("./serve.ts");
await serve({ config, log, keys, ipRanges });
