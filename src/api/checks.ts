import type { ClickHouseClient } from "@clickhouse/client";
import type { ValkeyClient } from "../dedup/valkey.ts";
import type { ImpressionProducer } from "../kafka/producer.ts";
import type { EngineCheck } from "./health.ts";

export interface Engines {
  /** Absent when the role serves no ingest: Kafka is then not this process's concern. */
  producer?: ImpressionProducer;
  /** Created with lazyConnect and enableOfflineQueue false, so a probe fails fast while Valkey is down. */
  valkey: ValkeyClient;
  clickhouse: ClickHouseClient;
}

/** The /readyz probes: one round trip to each engine. */
export function engineChecks({ producer, valkey, clickhouse }: Engines): Record<string, EngineCheck> {
  const checks: Record<string, EngineCheck> = {
    valkey: async () => {
      if (valkey.status === "wait") await valkey.connect();
      await valkey.ping();
    },
    clickhouse: async () => {
      const result = await clickhouse.ping();
      if (!result.success) throw result.error;
    },
  };
  if (producer) checks.kafka = () => producer.ping();
  return checks;
}
