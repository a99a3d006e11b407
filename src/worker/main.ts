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

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, "stopping: finishing the batch in hand, committing, leaving the group");
  await worker.stop();
  logger.info("stopped");
  process.exit(0);
}
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
