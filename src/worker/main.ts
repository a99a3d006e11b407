import closeWithGrace from "close-with-grace";
import { pino } from "pino";
import { loadConfig } from "../config.ts";
import { provision } from "../provision.ts";
import { createWorker } from "./worker.ts";

/** Composition root of the `worker` process: topics and tables first (idempotent), then the worker. */
const config = loadConfig(process.env);
const logger = pino({ name: "worker", level: config.LOG_LEVEL });

await provision(config);

const worker = createWorker(config, logger);
await worker.start();

// SIGTERM/SIGINT, or a crash: finish the batch in hand, commit, leave the group, then exit (0 after a signal,
// 1 after a crash); within pm2's kill_timeout of 30 s. A second signal while stopping is ignored.
closeWithGrace(
  { delay: 25_000, logger, onSecondSignal: (signal) => logger.warn({ signal }, "already stopping") },
  async ({ signal, err }) => {
    if (err) logger.error({ err }, "crashed: stopping");
    logger.info({ signal }, "stopping: finishing the batch in hand, committing, leaving the group");
    await worker.stop();
    logger.info("stopped");
  },
);
