import type { ClickHouseClient } from "@clickhouse/client";
import type { ValkeyClient } from "../dedup/valkey.ts";
import type { ImpressionProducer } from "../kafka/producer.ts";
import type { EngineCheck } from "./health.ts";
import { type ApiRole, roleServes } from "./role.ts";

export interface Engines {
  /** Absent when the role serves no ingest: Kafka is then not this process's concern. */
  producer?: ImpressionProducer;
  /** Created with lazyConnect and enableOfflineQueue false, so a probe fails fast while Valkey is down. */
  valkey: ValkeyClient;
  clickhouse: ClickHouseClient;
}

/** The /readyz probes of a role: one round trip to each engine it depends on. */
export function readinessChecks(role: ApiRole, { producer, valkey, clickhouse }: Engines): Record<string, EngineCheck> {
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
  if (roleServes(role).ingest) {
    if (!producer) throw new Error(`API_ROLE=${role} serves ingest: its readiness needs the Kafka producer`);
    checks.kafka = () => producer.ping();
  }
  return checks;
}
