import { Admin } from "@platformatic/kafka";
import type { Config } from "../../src/config.ts";
import { measureConsumerLag } from "../../src/kafka/lag.ts";
import { waitFor } from "../support/wait.ts";

/** Until the workers' group has committed every partition up to its end (no lag, as GET /metrics reports it). */
export async function waitForDrained(config: Config, timeoutMs: number): Promise<void> {
  const admin = new Admin({ clientId: "chaos-probe", bootstrapBrokers: config.KAFKA_BROKERS });
  const drained = async () =>
    (await measureConsumerLag(admin, config.KAFKA_TOPIC, config.KAFKA_CONSUMER_GROUP)).total === 0n;
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
    await admin.close();
  }
}
