import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterAll } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import { watchKeys } from "../../src/auth/keys-watcher.ts";
import { createGate } from "../../src/http/access-hooks.ts";
import { createImpressionProducer } from "../../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { createTestDatabase } from "./clickhouse.ts";
import { testConfig } from "./config.ts";

const logger = pino({ level: "warn" });

/**
 * The whole system for an end-to-end test: the API (every role) listening on a free port and one worker, on a
 * topic, group and database of their own. With `keysFile`: AUTH=required on it, watched (default interval) and
 * gated as src/api/main.ts does; `overrides`: more settings (CLICK_DOMAINS, say). What it starts is pushed on
 * `closers`, for the caller to close in reverse.
 */
export async function startTestSystem(
  prefix: string,
  closers: (() => Promise<unknown>)[],
  keysFile?: string,
  overrides: Record<string, string> = {},
): Promise<{ api: string }> {
  const name = `${prefix}-${randomBytes(4).toString("hex")}`;
  const db = await createTestDatabase(
    testConfig({
      API_ROLE: "all",
      AUTH: "off",
      KAFKA_TOPIC: name,
      KAFKA_DLQ_TOPIC: `${name}.dlq`,
      KAFKA_CONSUMER_GROUP: `${name}-group`,
      KAFKA_PARTITIONS: "2",
      WORKER_BATCH_MAX_WAIT_MS: "100",
      ...(keysFile && { AUTH: "required", API_KEYS_FILE: keysFile }),
      ...overrides,
    }),
  );
  closers.push(() => db.drop());
  const { config } = db;
  await ensureTopics(config.KAFKA_BROKERS, `${prefix}-test`, impressionTopics(config));
  const worker = createWorker(config, logger);
  closers.push(() => worker.stop());
  await worker.start();
  const producer = createImpressionProducer(config);
  closers.push(() => producer.close());
  const watcher = keysFile
    ? watchKeys(config.API_KEYS_FILE, {
        onError: (error) => logger.error(`${error.message}; keeping the last good keys`),
      })
    : undefined;
  if (watcher) closers.push(async () => watcher.close());
  const gate = createGate(config, watcher);
  const app = await buildApp({ config, producer, clickhouse: db.clickhouse, checks: {}, gate, logger: false });
  closers.push(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  return { api: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/** What a test file starts, closed in reverse order after its last test: push a close function per thing. */
export function useClosers(): (() => Promise<unknown>)[] {
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });
  return closers;
}
