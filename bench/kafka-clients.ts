import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Producer, stringSerializers } from "@platformatic/kafka";
import { ensureTopics } from "../src/kafka/topics.ts";
import { startKafka } from "../stack/kafka.ts";
import { repoRoot } from "../stack/paths.ts";
import { freePort } from "../stack/process.ts";

/**
 * Produce throughput of Kafka clients through the same local broker: idempotent, acks=all, keyed ~110-byte
 * JSON values, 1,000 messages per send call. `node bench/kafka-clients.ts`; uses KAFKA_BROKERS when given.
 * @confluentinc/kafka-javascript is measured only when it can be imported (its native build needs internet).
 */
const TOTAL = Number(process.env.BENCH_MESSAGES ?? 300_000);
const PER_SEND = 1000;
/** Sends in flight at once: the API has one produce request outstanding, librdkafka batches many. */
const CONCURRENT_SENDS = 8;
const runId = randomBytes(4).toString("hex");

function messages(topic: string, from: number): { topic: string; key: string; value: string }[] {
  return Array.from({ length: PER_SEND }, (_, i) => {
    const id = `${runId}-${from + i}`;
    const value = `{"id":"${id}","ts":${Date.now()},"userId":"user-${(from + i) % 10_000}","adId":"ad-${i % 10}"}`;
    return { topic, key: id, value };
  });
}

/** Runs `send` over TOTAL messages with CONCURRENT_SENDS calls in flight; returns messages per second. */
async function measure(send: (from: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < TOTAL) {
      const from = next;
      next += PER_SEND;
      await send(from);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_SENDS }, lane));
  return TOTAL / ((performance.now() - started) / 1000);
}

async function platformatic(brokers: string[], topic: string): Promise<number> {
  const producer = new Producer({
    clientId: "bench-platformatic",
    bootstrapBrokers: brokers,
    serializers: stringSerializers,
    idempotent: true,
  });
  try {
    await producer.send({ messages: messages(topic, -PER_SEND) });
    return await measure((from) => producer.send({ messages: messages(topic, from) }));
  } finally {
    await producer.close();
  }
}

interface ConfluentProducer {
  connect(): Promise<void>;
  send(record: { topic: string; messages: { key: string; value: string }[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}

async function confluent(brokers: string[], topic: string): Promise<number | string> {
  let module: { KafkaJS: { Kafka: new (config: object) => { producer(config: object): ConfluentProducer } } };
  try {
    const name = "@confluentinc/kafka-javascript";
    module = await import(name);
  } catch (error) {
    return `skipped: @confluentinc/kafka-javascript is not installed here (${(error as Error).message.split("\n")[0]})`;
  }
  const kafka = new module.KafkaJS.Kafka({ kafkaJS: { brokers, logLevel: 1 } });
  const producer = kafka.producer({ kafkaJS: { idempotent: true, acks: -1 } });
  await producer.connect();
  try {
    return await measure((from) => producer.send({ topic, messages: messages(topic, from) }));
  } finally {
    await producer.disconnect();
  }
}

async function main(): Promise<void> {
  let brokers = process.env.KAFKA_BROKERS?.split(",");
  let stop = async () => {};
  if (!brokers) {
    const dir = join(repoRoot, ".data/bench/kafka-clients");
    rmSync(dir, { recursive: true, force: true });
    const kafka = await startKafka({
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir: dir,
      logFile: join(dir, "kafka.log"),
    });
    brokers = kafka.brokers;
    stop = kafka.stop;
  }
  const topic = `bench-clients-${runId}`;
  try {
    await ensureTopics(brokers, "bench", [{ name: topic, partitions: 16, replicationFactor: 1 }]);
    const rows: [string, number | string][] = [
      ["@platformatic/kafka", await platformatic(brokers, topic)],
      ["@confluentinc/kafka-javascript", await confluent(brokers, topic)],
    ];
    console.log(`Kafka produce throughput, ${TOTAL.toLocaleString("en-US")} messages, node ${process.version}\n`);
    console.log("| client | messages/s |\n|---|---:|");
    for (const [name, result] of rows) {
      console.log(`| ${name} | ${typeof result === "number" ? Math.round(result).toLocaleString("en-US") : result} |`);
    }
  } finally {
    await stop();
  }
}

await main();
