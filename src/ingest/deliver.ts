import type { ErrorCode } from "../errors.ts";
import type { ImpressionProducer, KeyedRecord } from "../kafka/producer.ts";
import type { ApiMetrics } from "../metrics/api.ts";

/** What a delivery can fail with (ProducerUnavailableError): Kafka did not take the events, or the process stops. */
export const DELIVERY_ERRORS = ["kafka_unavailable", "shutting_down"] as const satisfies readonly ErrorCode[];

/** Writes validated events to Kafka and resolves on the ack; the one way the ingest routes produce. */
export type Deliver = (route: string, records: readonly KeyedRecord[]) => Promise<void>;

/** Delivery through `producer`, timed and counted when metrics are on. */
export function createDelivery(producer: ImpressionProducer, metrics: ApiMetrics | undefined): Deliver {
  if (!metrics) return (_route, records) => producer.send(records);
  return async (route, records) => {
    const stop = metrics.produceDuration.startTimer();
    try {
      await producer.send(records);
    } finally {
      stop();
    }
    metrics.countReceived(route, records.length);
  };
}
