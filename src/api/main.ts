import closeWithGrace from "close-with-grace";
import { pino } from "pino";
import { watchKeys } from "../auth/keys-watcher.ts";
import { loadConfig, metricsPort } from "../config.ts";
import { createImpressionProducer } from "../kafka/producer.ts";
import { describeDifference, ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { apiMetrics } from "../metrics/api.ts";
import { createRegistry, serveMetrics } from "../metrics/registry.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { buildApp } from "./app.ts";
import { createGate } from "./auth.ts";
import { readinessChecks } from "./checks.ts";
import { roleServes } from "./role.ts";

/** Composition root of the `api` process (one pm2 cluster instance): config, adapters, app, listen, stop. */
const config = loadConfig(process.env);
const log = pino({ level: config.LOG_LEVEL });
const serves = roleServes(config.API_ROLE);

// Keys first: an invalid or unreadable keys file throws here and stops the process with a message naming it.
const keys =
  config.AUTH === "off"
    ? undefined
    : watchKeys(config.API_KEYS_FILE, {
        onReload: (keyring) => log.info({ file: config.API_KEYS_FILE, active: keyring.activeCount }, "keys reloaded"),
        onError: (error) => log.error({ file: config.API_KEYS_FILE }, `${error.message}; keeping the last good keys`),
      });
const keyring = keys?.current();
if (config.AUTH === "required" && !keyring?.activeCount) {
  throw new Error(
    `AUTH=required, but ${config.API_KEYS_FILE} holds no active key: create one with npm run keys -- create --scope ingest --name NAME`,
  );
}
if (config.AUTH === "off") {
  log.warn("AUTH=off: every route is open to anyone who reaches this API");
} else if (!keyring?.holdsKeys) {
  log.warn(
    `NO API KEYS: ${config.API_KEYS_FILE} holds no key, so every route is OPEN to anyone who reaches this API. ` +
      "Create one (npm run keys -- create --scope ingest --name NAME) and keys are required within seconds.",
  );
}

if (serves.ingest) {
  // An existing topic is never altered: each difference from the configuration is said at every start.
  const differences = await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  for (const difference of differences) log.warn(difference, describeDifference(difference));
}
const registry = config.METRICS === "on" ? createRegistry() : undefined;
// The gauge reads the producer's buffer at each scrape, by then the producer exists.
const metrics = registry && apiMetrics(registry, (): number => producer?.bufferedBytes ?? 0);
const producer = serves.ingest ? createImpressionProducer(config, metrics?.observeProduce) : undefined;
const clickhouse = serves.queries ? createClickHouse(config) : undefined;
const checks = readinessChecks(config.API_ROLE, { producer, clickhouse });
const metricsServer =
  registry && (await serveMetrics(registry, config.METRICS_HOST, metricsPort(config, config.API_METRICS_PORT)));
if (metricsServer) log.info(`metrics at http://${config.METRICS_HOST}:${metricsServer.port}/metrics`);
const app = await buildApp({
  config,
  producer,
  clickhouse,
  checks,
  gate: createGate(config, keys),
  metrics,
  logger: log,
});
await app.listen({ host: config.HOST, port: config.PORT });

// SIGTERM/SIGINT, or a crash: stop taking requests, answer those in hand, flush, then exit (0 after a signal,
// 1 after a crash); within pm2's kill_timeout of 10 s. A second signal while stopping is ignored.
closeWithGrace(
  { delay: 8_000, logger: log, onSecondSignal: (signal) => log.warn({ signal }, "already stopping") },
  async ({ signal, err }) => {
    if (err) log.error({ err }, "crashed: stopping");
    log.info({ signal }, "stopping: no new connections, finishing in-flight requests");
    // Closing the server first lets in-flight requests get their acks; then what is left is flushed.
    const closed = app.close();
    // Keep-alive sockets busy when close began would hold it open once idle: close them as they go idle.
    const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
    await closed;
    clearInterval(sweeper);
    keys?.close();
    await producer?.close();
    await Promise.allSettled([clickhouse?.close(), metricsServer?.close()]);
    log.info("stopped");
  },
);
