import { Admin, ConfigResourceTypes, Producer, stringSerializers } from "@platformatic/kafka";
import { afterAll, describe, expect, it } from "vitest";
import { readTopic } from "../test/support/kafka.ts";
import { useKafkaCluster } from "../test/support/kafka-cluster.ts";
import { waitFor } from "../test/support/wait.ts";

const cluster = useKafkaCluster();
const topic = "cluster-test";
let admin: Admin | undefined;
const adminOf = () => {
  admin ??= new Admin({ clientId: "cluster-test", bootstrapBrokers: cluster.brokers });
  return admin;
};
afterAll(() => admin?.close());

async function send(value: string): Promise<void> {
  const producer = new Producer({
    clientId: "cluster-test",
    bootstrapBrokers: cluster.brokers,
    serializers: stringSerializers,
    idempotent: true,
  });
  try {
    await producer.send({ messages: [{ topic, key: value, value }] });
  } finally {
    await producer.close();
  }
}

/** The in-sync replica count of each of the topic's partitions, as the brokers report it now. */
async function inSyncReplicas(): Promise<number[]> {
  const metadata = await adminOf().metadata({ topics: [topic], forceUpdate: true });
  return (metadata.topics.get(topic)?.partitions ?? []).map((partition) => partition.isr.length);
}

describe("a three-node Kafka cluster", () => {
  it("has three brokers, and a topic created with its defaults gets three replicas and min ISR 2", async () => {
    const metadata = await adminOf().metadata({ topics: [] });
    expect([...metadata.brokers.keys()].sort()).toEqual([1, 2, 3]);

    await adminOf().createTopics({ topics: [topic], partitions: 2 });
    const created = await adminOf().metadata({ topics: [topic] });
    for (const partition of created.topics.get(topic)?.partitions ?? []) {
      expect(partition.replicas.toSorted()).toEqual([1, 2, 3]);
    }
    const [described] = await adminOf().describeConfigs({
      resources: [
        { resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: ["min.insync.replicas"] },
      ],
    });
    expect(described?.configs.find((c) => c.name === "min.insync.replicas")?.value).toBe("2");
  });

  it("takes writes with one node stopped, and the node comes back on its data into the in-sync replicas", async () => {
    await send("before");
    const node = cluster.nodes[1];
    await node?.stop();
    expect(node?.running).toBe(false);
    await send("while-one-is-down");
    expect(await inSyncReplicas()).toEqual([2, 2]);

    await node?.start();
    expect(node?.running).toBe(true);
    await waitFor("the restarted node back in sync", 30_000, async () =>
      (await inSyncReplicas()).every((n) => n === 3) ? true : undefined,
    );
    const seen = await readTopic(cluster.brokers, topic, (messages) => messages.length >= 2);
    expect(seen.map((m) => m.value).sort()).toEqual(["before", "while-one-is-down"]);
  });
});
