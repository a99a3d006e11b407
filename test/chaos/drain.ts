import { Consumer } from "@platformatic/kafka";
import type { Config } from "../../src/config.ts";
import { waitFor } from "../support/wait.ts";

/** Until the workers' group has committed every partition up to its end. */
export async function waitForDrained(config: Config, timeoutMs: number): Promise<void> {
  const probe = new Consumer({
    clientId: "chaos-probe",
    groupId: config.KAFKA_CONSUMER_GROUP,
    bootstrapBrokers: config.KAFKA_BROKERS,
  });
  const topic = config.KAFKA_TOPIC;
  const partitions = Array.from({ length: config.KAFKA_PARTITIONS }, (_, p) => p);
  const drained = async () => {
    const [ends, commits] = await Promise.all([
      probe.listOffsets({ topics: [topic] }),
      probe.listCommittedOffsets({ topics: [{ topic, partitions }] }),
    ]);
    return partitions.every((p) => {
      const end = ends.get(topic)?.[p] ?? 0n;
      return end === 0n || (commits.get(topic)?.[p] ?? -1n) >= end;
    });
  };
  try {
    await waitFor(
      "the workers to commit everything",
      timeoutMs,
      () =>
        drained().then(
          (done) => done || undefined,
          () => undefined,
        ),
      250,
    );
  } finally {
    await probe.close();
  }
}
