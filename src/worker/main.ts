import closeWithGrace from "close-with-grace";
import { pino } from "pino";
import { configOrExit } from "../config.ts";
import { describeDifference } from "../kafka/topics.ts";
import { createRegistry, serveMetrics } from "../metrics/registry.ts";
import { stalledGauge, workerMetrics } from "../metrics/worker.ts";
import { listenOrExit, workerMetricsPort } from "../port-in-use.ts";
import { provision } from "../provision.ts";
import { describeRetentionDifference } from "../storage/retention.ts";
import { ConsumerProgress } from "./health.ts";
import { createWorker, DEFAULT_TIMINGS } from "./worker.ts";

/** Composition root of the `worker` process: topics and tables first (idempotent), then the worker. */
const config = configOrExit(process.env);
const logger = pino({ name: "worker", level: config.LOG_LEVEL });

// Existing topics and tables' TTL are never altered: each difference from the configuration is said at every start.
const provisioned = await provision(config);
for (const difference of provisioned.topics) logger.warn(difference, describeDifference(difference));
for (const difference of provisioned.retention) logger.warn(difference, describeRetentionDifference(difference));

const progress = new ConsumerProgress();
const health = () => progress.health(config.WORKER_STALL_SECONDS * 1000);
const registry = config.METRICS === "on" ? createRegistry() : undefined;
if (registry) stalledGauge(registry, () => health().status === "stalled");
const metricsAt = workerMetricsPort(config);
const metricsServer =
  registry &&
  (await listenOrExit(
    "worker",
    metricsAt,
    serveMetrics(registry, metricsAt.host, metricsAt.port, () => {
      const body = health();
      return { ok: body.status === "ok", body };
    }),
  ));
if (metricsServer) {
  const url = `http://${config.METRICS_HOST}:${metricsServer.port}`;
  logger.info(`metrics at ${url}/metrics, health at ${url}/healthz`);
}
// Another process has this slot's name now (this one stalled past the lease): stop gracefully; pm2 starts the
// slot again, under a name of its own.
const stopSelf = () => process.kill(process.pid, "SIGTERM");
const worker = createWorker(config, logger, DEFAULT_TIMINGS, registry && workerMetrics(registry), progress, stopSelf);
await worker.start();

// SIGTERM/SIGINT, or a crash: finish the batch in hand, commit, leave the group, then exit (0 after a signal,
// 1 after a crash); within pm2's kill_timeout of 30 s. A second signal while stopping is ignored.
closeWithGrace(
  { delay: 25_000, logger, onSecondSignal: (signal) => logger.warn({ signal }, "already stopping") },
  async ({ signal, err }) => {
    if (err) logger.error({ err }, "crashed: stopping");
    logger.info({ signal }, "stopping: finishing the batch in hand, committing, leaving the group");
    await worker.stop();
    await metricsServer?.close();
    logger.info("stopped");
  },
);
