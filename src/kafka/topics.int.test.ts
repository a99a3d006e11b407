import { Admin, ConfigResourceTypes, ConfigSources } from "@platformatic/kafka";
import { afterAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { useKafkaCluster } from "../../test/support/kafka-cluster.ts";
import { ensureTopics, impressionTopics } from "./topics.ts";

const cluster = useKafkaCluster();
let admin: Admin | undefined;
const adminOf = () => {
  admin ??= new Admin({ clientId: "topics-test", bootstrapBrokers: cluster.brokers });
  return admin;
};
afterAll(() => admin?.close());

/** Partitions, replicas of each partition and min.insync.replicas (with where it comes from) of a topic. */
async function described(topic: string) {
  const metadata = await adminOf().metadata({ topics: [topic], forceUpdate: true });
  const [configs] = await adminOf().describeConfigs({
    resources: [
      { resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: ["min.insync.replicas"] },
    ],
  });
  const minIsr = configs?.configs.find((c) => c.name === "min.insync.replicas");
  const partitions = metadata.topics.get(topic)?.partitions ?? [];
  return {
    partitions: partitions.length,
    replicas: partitions.map((p) => p.replicas.length),
    minInsyncReplicas: minIsr?.value,
    setOnTopic: minIsr?.configSource === ConfigSources.DYNAMIC_TOPIC_CONFIG,
  };
}

describe("ensureTopics on a three-broker cluster", () => {
  it("creates the topic and its DLQ with replication 3 and min.insync.replicas 2 on the topic itself", async () => {
    const config = testConfig({
      KAFKA_BROKERS: cluster.brokers.join(","),
      KAFKA_TOPIC: "provisioned",
      KAFKA_DLQ_TOPIC: "provisioned.dlq",
      KAFKA_PARTITIONS: "3",
      KAFKA_REPLICATION_FACTOR: "3",
    });
    expect(await ensureTopics(config.KAFKA_BROKERS, "topics-test", impressionTopics(config))).toEqual([]);
    for (const topic of ["provisioned", "provisioned.dlq"]) {
      expect(await described(topic)).toEqual({
        partitions: 3,
        replicas: [3, 3, 3],
        minInsyncReplicas: "2",
        setOnTopic: true,
      });
    }
    // Idempotent: a second start finds them as configured.
    expect(await ensureTopics(config.KAFKA_BROKERS, "topics-test", impressionTopics(config))).toEqual([]);
  });

  it("reports every setting of an existing topic that differs, and changes none", async () => {
    await adminOf().createTopics({
      topics: ["existing"],
      partitions: 2,
      replicas: 2,
      configs: [{ name: "min.insync.replicas", value: "1" }],
    });
    const before = await described("existing");

    const differences = await ensureTopics(cluster.brokers, "topics-test", [
      { name: "existing", partitions: 4, replicationFactor: 3, minInsyncReplicas: 2 },
    ]);

    expect(differences).toEqual([
      { topic: "existing", setting: "partitions", actual: 2, configured: 4 },
      { topic: "existing", setting: "replication.factor", actual: 2, configured: 3 },
      { topic: "existing", setting: "min.insync.replicas", actual: 1, configured: 2 },
    ]);
    expect(before).toEqual({ partitions: 2, replicas: [2, 2], minInsyncReplicas: "1", setOnTopic: true });
    expect(await described("existing")).toEqual(before);
  });
});
