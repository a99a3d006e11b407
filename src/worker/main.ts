import closeWithGrace from "close-with-grace";
import { pino } from "pino";
import { loadConfig, metricsPort } from "../config.ts";
import { createRegistry, serveMetrics } from "../metrics/registry.ts";
import { workerMetrics } from "../metrics/worker.ts";
import { provision } from "../provision.ts";
import { createWorker, DEFAULT_TIMINGS } from "./worker.ts";

/** Composition root of the `worker` process: topics and tables first (idempotent), then the worker. */
const config = loadConfig(process.env);
const logger = pino({ name: "worker", level: config.LOG_LEVEL });

await provision(config);

const registry = config.METRICS === "on" ? createRegistry() : undefined;
const metricsServer =
  registry && (await serveMetrics(registry, config.METRICS_HOST, metricsPort(config, config.WORKER_METRICS_PORT)));
if (metricsServer) logger.info(`metrics at http://${config.METRICS_HOST}:${metricsServer.port}/metrics`);
const worker = createWorker(config, logger, DEFAULT_TIMINGS, registry && workerMetrics(registry));
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
