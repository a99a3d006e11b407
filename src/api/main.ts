import closeWithGrace from "close-with-grace";
import { pino } from "pino";
import type { Keyring } from "../auth/keyring.ts";
import { KeysFileError } from "../auth/keys-file.ts";
import { watchKeys } from "../auth/keys-watcher.ts";
import { ConfigError, loadConfig } from "../config.ts";
import { createGate } from "../http/access-hooks.ts";
import { createImpressionProducer } from "../kafka/producer.ts";
import { describeDifference, ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { apiMetrics } from "../metrics/api.ts";
import { createRegistry, serveMetrics } from "../metrics/registry.ts";
import { apiMetricsPort, apiPort, listenOrExit } from "../port-in-use.ts";
import { retentionReport } from "../provision.ts";
import { createQueryClickHouse } from "../storage/clickhouse.ts";
import { describeRetentionDifference } from "../storage/retention.ts";
import { trafficClassifier } from "../traffic/classify.ts";
import { type IpRanges, IpRangesError } from "../traffic/ip-ranges.ts";
import { watchIpRanges } from "../traffic/ip-ranges-watcher.ts";
import type { WatchedFile } from "../watched-file.ts";
import { buildApp } from "./app.ts";
import { readinessChecks } from "./checks.ts";
import { trackConnections } from "./connections.ts";
import { lowerPriority } from "./priority.ts";
import { roleServes } from "./role.ts";

/** Composition root of the `api` process (one pm2 cluster instance): config, adapters, app, listen, stop. */
const config = (() => {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message); // what is wrong with which variable; a stack would say nothing more
    process.exit(1);
  }
})();
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

if (serves.ingest) {
  // An existing topic is never altered: each difference from the configuration is said at every start.
  const differences = await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  for (const difference of differences) log.warn(difference, describeDifference(difference));
}
// Only `npm run retention` changes the tables' TTL: a RETENTION_DAYS that differs from it is said. In the
// background and best effort: ingest needs only Kafka.
void retentionReport(config).then(
  (differences) => {
    for (const difference of differences) log.warn(difference, describeRetentionDifference(difference));
  },
  (error: unknown) => log.debug({ err: error }, "cannot compare RETENTION_DAYS with the tables' TTL"),
);
const registry = config.METRICS === "on" ? createRegistry() : undefined;
// The gauge reads the producer's buffer at each scrape, by then the producer exists.
const metrics = registry && apiMetrics(registry, (): number => producer?.bufferedBytes ?? 0);
const producer = serves.ingest ? createImpressionProducer(config, metrics?.observeProduce) : undefined;
const clickhouse = serves.queries ? createQueryClickHouse(config) : undefined;
const checks = readinessChecks(config.API_ROLE, { producer, clickhouse });
const metricsAt = apiMetricsPort(config);
const metricsServer =
  registry && (await listenOrExit("api", metricsAt, serveMetrics(registry, metricsAt.host, metricsAt.port)));
if (metricsServer) log.info(`metrics at http://${config.METRICS_HOST}:${metricsServer.port}/metrics`);
const app = await buildApp({
  config,
  producer,
  clickhouse,
  checks,
  gate: createGate(config, keys),
  traffic: trafficClassifier(config, ipRanges?.current) ?? null,
  metrics,
  logger: log,
});
const connections = trackConnections(app.server);
await listenOrExit("api", apiPort(config), app.listen({ host: config.HOST, port: config.PORT }));

// SIGTERM/SIGINT, or a crash: stop taking requests, answer those in hand, flush, then exit (0 after a signal,
// 1 after a crash); within pm2's kill_timeout of 10 s. A second signal while stopping is ignored.
closeWithGrace(
  { delay: 8_000, logger: log, onSecondSignal: (signal) => log.warn({ signal }, "already stopping") },
  async ({ signal, err }) => {
    if (err) log.error({ err }, "crashed: stopping");
    log.info({ signal }, "stopping: no new connections, finishing in-flight requests");
    // Closing the server first lets in-flight requests get their acks; then what is left is flushed. Bodies still
    // arriving are cut at once (the ingest routes' preClose hook), so no stalled sender holds the stop.
    const closed = app.close();
    // Connections that carry no request being answered (idle keep-alive ones, or still sending headers) would hold
    // it open: close them, and the busy ones as they go idle.
    const sweeper = setInterval(() => connections.closeStalled(), 50);
    await closed;
    clearInterval(sweeper);
    keys?.close();
    ipRanges?.close();
    await producer?.close();
    await Promise.allSettled([clickhouse?.close(), metricsServer?.close()]);
    log.info("stopped");
  },
);
