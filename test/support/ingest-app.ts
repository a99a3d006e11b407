import type { FastifyInstance } from "fastify";
import { beforeAll } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import type { Config } from "../../src/config.ts";
import { createImpressionProducer } from "../../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";

/**
 * The ingest API of `config` with a real producer, for the calling test file: its topics created and the app
 * built before its tests, the app and the producer closed after them. Call it at the file's top level.
 */
export function useIngestApp(config: Config): { readonly app: FastifyInstance } {
  let app: FastifyInstance | undefined;
  beforeAll(async () => {
    await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
    const producer = createImpressionProducer(config);
    app = await buildApp({ config, producer, checks: {}, logger: false });
    return async () => {
      await app?.close();
      await producer.close();
    };
  });
  return {
    get app() {
      if (!app) throw new Error("useIngestApp: the app is built in beforeAll");
      return app;
    },
  };
}
