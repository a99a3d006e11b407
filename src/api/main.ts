import { pino } from "pino";
import type { Keyring } from "../auth/keyring.ts";
import { KeysFileError } from "../auth/keys-file.ts";
import { watchKeys } from "../auth/keys-watcher.ts";
import { configOrExit } from "../config.ts";
import { type IpRanges, IpRangesError, unusableRangesMessage } from "../traffic/ip-ranges.ts";
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

/** How one watched file of the API is started, reported and described (the keys, the IP ranges). */
interface WatchedStart<T, E extends Error> {
  watch: (path: string, options: { onReload: (value: T) => void; onError: (error: E) => void }) => WatchedFile<T>;
  refused: (error: unknown) => error is E;
  /** The line while the file cannot be used: which file, why, and what to do. */
  refusal: (error: E) => string;
  /** What it holds, in the log lines ("keys", "IP ranges"), and the fields that say how much. */
  what: string;
  counts: (value: T) => Record<string, number>;
}

/**
 * Waits until the file at `path` is usable (src/usable-file.ts), then watches it: each reload logged, a broken
 * edit reported while the last good version stays.
 */
async function startWatched<T, E extends Error>(path: string, start: WatchedStart<T, E>): Promise<WatchedFile<T>> {
  const watcher = await whenUsable(path, {
    use: () =>
      start.watch(path, {
        onReload: (value) => log.info({ file: path, ...start.counts(value) }, `${start.what} reloaded`),
        onError: (error) => log.error({ file: path }, `${error.message}; keeping the last good ${start.what}`),
      }),
    refused: start.refused,
    onRefused: (error) => log.error(`${start.refusal(error)}; waiting for it, not listening on any port until then`),
  });
  log.info({ file: path, ...start.counts(watcher.current()) }, `${start.what} in force`);
  return watcher;
}

// Keys first, and fail closed: with AUTH=required, no route is served until the keys file exists, is valid and has
// an active key. Until then one line says which file and why, again only when that changes.
const keys: WatchedFile<Keyring> | undefined =
  config.AUTH === "off"
    ? undefined
    : await startWatched(config.API_KEYS_FILE, {
        watch: watchKeys,
        refused: (error): error is KeysFileError => error instanceof KeysFileError,
        refusal: (error) => {
          const where =
            error.problem === "not_found" ? ` (API_KEYS_FILE, resolved from working directory ${process.cwd()})` : "";
          return (
            `AUTH=required, but ${error.message}${where}: create a key with API_KEYS_FILE=${config.API_KEYS_FILE} ` +
            "npm run keys -- create --scope ingest --name NAME, or set AUTH=off to run without keys"
          );
        },
        what: "keys",
        counts: (keyring) => ({ active: keyring.activeCount }),
      });
if (!keys) log.warn("AUTH=off: every route is open to anyone who reaches this API");

// The operator's IP ranges, watched like the keys: a file that cannot be read at start is waited for; a broken edit
// later keeps the last good ranges.
const ipRanges: WatchedFile<IpRanges> | undefined =
  serves.ingest && config.IVT_CLASSIFICATION === "on" && config.IVT_IP_RANGES_FILE
    ? await startWatched(config.IVT_IP_RANGES_FILE, {
        watch: watchIpRanges,
        refused: (error): error is IpRangesError => error instanceof IpRangesError,
        refusal: unusableRangesMessage,
        what: "IP ranges",
        counts: (ranges) => ({ ranges: ranges.listed }),
      })
    : undefined;

// From here a stop signal is serve's: it finishes what is in hand.
process.off("SIGTERM", stopWaiting).off("SIGINT", stopWaiting);
const { serve } = await import("./serve.ts");
await serve({ config, log, keys, ipRanges });
