import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { type KafkaCluster, type KafkaNode, startKafkaCluster } from "../../stack/kafka-cluster.ts";
import { repoRoot } from "../../stack/paths.ts";

/**
 * A three-node Kafka cluster (replication 3, min ISR 2) of the calling test file's own, started before its first
 * test and stopped after its last: the file may stop and kill its nodes. Its data is removed afterwards, its logs
 * stay in `.data/test/` (which the next test run clears). Call it at the file's top level.
 */
export function useKafkaCluster(): Pick<KafkaCluster, "brokers" | "nodes"> {
  const dir = join(repoRoot, ".data/test", `kafka-cluster-${randomBytes(4).toString("hex")}`);
  let cluster: KafkaCluster | undefined;
  beforeAll(async () => {
    cluster = await startKafkaCluster({ nodes: 3, dataDir: join(dir, "data"), logDir: join(dir, "logs") });
  }, 180_000);
  afterAll(async () => {
    // Its data is thrown away: no need to wait for an orderly shutdown (up to 10 s when the quorum goes first).
    await Promise.all(cluster?.nodes.map((node) => node.kill()) ?? []);
    rmSync(join(dir, "data"), { recursive: true, force: true });
  }, 60_000);
  const started = () => {
    if (!cluster) throw new Error("useKafkaCluster: the cluster is started in beforeAll");
    return cluster;
  };
  return {
    get brokers(): string[] {
      return started().brokers;
    },
    get nodes(): KafkaNode[] {
      return started().nodes;
    },
  };
}
