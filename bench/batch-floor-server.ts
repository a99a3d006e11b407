import { randomUUID } from "node:crypto";
import Fastify from "fastify";
import { bodyLimits, buildApp } from "../src/api/app.ts";
import { loadConfig } from "../src/config.ts";
import { BodyIntake } from "../src/ingest/intake.ts";
import { admitBatches } from "../src/ingest/routes.ts";
import { ACK_SHARE_OF_PRODUCE_TIMEOUT, createImpressionProducer } from "../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../src/kafka/topics.ts";

/**
 * The memory floor for POST /events: the API's process with its app built (every module and route loaded, as
 * `API_ROLE` asks) and its Kafka producer, but whose /events only reads each body, with the same admission
 * limits, and writes it to Kafka as one record: what any way of parsing a batch pays before its first object.
 * Listens on PORT; takes the API's environment.
 */
const config = loadConfig(process.env);
await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
const producer = createImpressionProducer(config);
// Built and left unserved: its modules and compiled routes are what an API process holds.
const app = await buildApp({ config, producer, checks: {}, logger: false });
await app.ready();

const floor = Fastify({ logger: false });
floor.removeAllContentTypeParsers();
floor.get("/healthz", async () => ({ status: "ok" }));
const intake = new BodyIntake(bodyLimits(config));
await floor.register(async (batchScope) => {
  // The app's admission, its wait (src/api/app.ts) and its body budgets; the body is taken as it came.
  const maxWaitMs = Math.round(config.PRODUCE_TIMEOUT_MS * (1 - ACK_SHARE_OF_PRODUCE_TIMEOUT));
  const readBatch = admitBatches(batchScope, { intake, maxWaitMs, maxBodyBytes: config.BATCH_MAX_BYTES });
  batchScope.addContentTypeParser("application/json", (request, payload, done) => {
    readBatch(request, payload, undefined, (body) => body, done);
  });
  batchScope.post("/events", async (request, reply) => {
    await producer.send([{ key: randomUUID(), value: request.body as Buffer }]);
    return reply.code(202).send({ accepted: 1, rejected: [] });
  });
});
await floor.listen({ host: "127.0.0.1", port: config.PORT });
process.once("SIGTERM", async () => {
  await floor.close();
  intake.close();
  await producer.close();
  process.exit(0);
});
