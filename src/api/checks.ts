import type { ClickHouseClient } from "@clickhouse/client";
import type { ImpressionProducer } from "../kafka/producer.ts";
import type { EngineCheck } from "./health.ts";
import { type ApiRole, roleServes } from "./role.ts";

export interface Engines {
  /** Required when the role serves ingest. */
  producer?: ImpressionProducer;
  /** Required when the role serves queries. */
  clickhouse?: ClickHouseClient;
}

/**
 * The /readyz probes of a role: one round trip to each engine its routes cannot work without, Kafka for ingest
 * and ClickHouse for queries, so an outage of one side never takes the other out of a load balancer. No API
 * route uses Valkey (only the workers claim ids), and /stats/pipeline and /metrics answer their own 503 while
 * Kafka is away, which is no reason to stop serving /stats.
 */
export function readinessChecks(role: ApiRole, { producer, clickhouse }: Engines): Record<string, EngineCheck> {
  const serves = roleServes(role);
  const checks: Record<string, EngineCheck> = {};
  if (serves.ingest) {
    if (!producer) throw new Error(`API_ROLE=${role} serves ingest: its readiness needs the Kafka producer`);
    checks.kafka = () => producer.ping();
  }
  if (serves.queries) {
    if (!clickhouse) throw new Error(`API_ROLE=${role} serves queries: its readiness needs the ClickHouse client`);
    checks.clickhouse = async () => {
      const result = await clickhouse.ping();
      if (!result.success) throw result.error;
    };
  }
  return checks;
}
