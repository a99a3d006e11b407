import type { ErrorCode } from "../errors.ts";
import type { ImpressionProducer, KeyedRecord } from "../kafka/producer.ts";
import type { ApiMetrics } from "../metrics/api.ts";

/** What a delivery can fail with (ProducerUnavailableError): Kafka did not take the events, or the process stops. */
export const DELIVERY_ERRORS = ["kafka_unavailable", "shutting_down"] as const satisfies readonly ErrorCode[];

/** Writes validated events to Kafka and resolves on the ack; the one way the ingest routes produce. */
export type Deliver = (route: string, records: readonly KeyedRecord[]) => Promise<void>;

/**
 * Delivery through `producer`, its acknowledged events counted by route when metrics are on (the producer times
 * its produce requests itself: one timer per request to Kafka, not per sender).
 */
export function createDelivery(producer: ImpressionProducer, metrics: ApiMetrics | undefined): Deliver {
  if (!metrics) return (_route, records) => producer.send(records);
  return async (route, records) => {
    await producer.send(records);
    metrics.countReceived(route, records.length);
  };
}
