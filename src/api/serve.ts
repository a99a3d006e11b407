import closeWithGrace from "close-with-grace";
import type { Logger } from "pino";
import type { Keyring } from "../auth/keyring.ts";
import type { Config } from "../config.ts";
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
import type { IpRanges } from "../traffic/ip-ranges.ts";
import type { WatchedFile } from "../watched-file.ts";
import { buildApp } from "./app.ts";
import { readinessChecks } from "./checks.ts";
import { trackConnections } from "./connections.ts";
import { roleServes } from "./role.ts";

/** What src/api/main.ts checked before loading this module: the config, and the files it waits for until usable. */
export interface Checked {
  config: Config;
  log: Logger;
  keys: WatchedFile<Keyring> | undefined;
  ipRanges: WatchedFile<IpRanges> | undefined;
}

/** The rest of the `api` process's composition: adapters, app, listen, stop. */
export async function serve({ config, log, keys, ipRanges }: Checked): Promise<void> {
  const serves = roleServes(config.API_ROLE);
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
}
