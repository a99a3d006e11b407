import { join } from "node:path";
import { installKafka, type KafkaEngine, type KafkaNodeOptions, newClusterId, startKafkaNode } from "./kafka.ts";
import { freePort } from "./process.ts";

export interface KafkaClusterOptions {
  nodes: number;
  dataDir: string;
  logDir: string;
  /** Each node's JVM heap (-Xms and -Xmx). */
  heap?: string;
  /** Broker ports, one per node; free ports by default. */
  ports?: number[];
  /** Controller ports, one per node; free ports by default. */
  controllerPorts?: number[];
}

export interface KafkaNode {
  readonly id: number;
  /** "127.0.0.1:port" */
  readonly broker: string;
  readonly running: boolean;
  /** (Re)starts the node on its own data; resolves once it serves as a broker. */
  start(): Promise<void>;
  /**
   * SIGTERM (a controlled shutdown), and waits for the exit. The last node of a quorum cannot shut down in
   * order: it is killed after 30 s.
   */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

export interface KafkaCluster {
  readonly brokers: string[];
  readonly nodes: KafkaNode[];
  stop(): Promise<void>;
}

/**
 * Little CPU while idle and at start (measured: about a third less than the single broker's G1 flags):
 * a single-threaded collector and JIT, as if the JVM had one core; plenty for test and chaos loads.
 */
export const LEAN_JVM = [
  "-XX:+UseSerialGC",
  "-XX:TieredStopAtLevel=1",
  "-XX:ActiveProcessorCount=1",
  "-XX:CICompilerCount=1",
];
/** A whole cluster going down together cannot shut down in order (the last nodes lose their quorum). */
const CLUSTER_STOP_GRACE_MS = 10_000;

/**
 * Starts a KRaft cluster of `nodes` combined broker+controller nodes on loopback, every node a voter. With
 * three or more nodes everything is kept on three replicas and a write needs two of them, as in production.
 * The nodes start in parallel: a broker is up only once a majority of the quorum has elected a leader.
 */
export async function startKafkaCluster(options: KafkaClusterOptions): Promise<KafkaCluster> {
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const ports = options.ports ?? (await Promise.all(ids.map(() => freePort())));
  const controllerPorts = options.controllerPorts ?? (await Promise.all(ids.map(() => freePort())));
  if (ports.length !== options.nodes || controllerPorts.length !== options.nodes) {
    throw new Error(`startKafkaCluster: ${options.nodes} nodes need ${options.nodes} ports and controller ports`);
  }
  const voters = ids.map((id, i) => ({ id, controllerPort: controllerPorts[i] as number }));
  const clusterId = newClusterId();
  const properties = clusterProperties(options.nodes);
  const nodes = ids.map((id, i) =>
    clusterNode({
      nodeId: id,
      port: ports[i] as number,
      controllerPort: controllerPorts[i] as number,
      voters,
      clusterId,
      properties,
      dataDir: join(options.dataDir, `node-${id}`),
      logFile: join(options.logDir, `kafka-${id}.log`),
      heap: options.heap ?? "320m",
      jvmFlags: LEAN_JVM,
    }),
  );
  await installKafka(join(options.logDir, "kafka-1.log"));

  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop(CLUSTER_STOP_GRACE_MS)));
  };
  const started = await Promise.allSettled(nodes.map((node) => node.start()));
  const failures = started.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
  if (failures.length > 0) {
    await stop();
    throw new Error(`kafka cluster did not start:\n${failures.join("\n")}`);
  }
  return { brokers: nodes.map((node) => node.broker), nodes, stop };
}

/** Replication of everything the cluster keeps, internal topics included, and quick fencing of a lost node. */
function clusterProperties(nodes: number): Record<string, string | number> {
  const replicas = Math.min(nodes, 3);
  const minIsr = Math.max(1, replicas - 1);
  return {
    "offsets.topic.replication.factor": replicas,
    "transaction.state.log.replication.factor": replicas,
    "transaction.state.log.min.isr": minIsr,
    "default.replication.factor": replicas,
    "min.insync.replicas": minIsr,
    // A killed node leaves the in-sync replicas within seconds, not the default 9 s and 30 s.
    "broker.heartbeat.interval.ms": 500,
    "broker.session.timeout.ms": 3000,
    "replica.lag.time.max.ms": 5000,
    // Few threads per node: three nodes share a small machine with the rest of the system.
    "num.network.threads": 2,
    "num.io.threads": 2,
    "num.replica.fetchers": 1,
    "background.threads": 2,
    "log.cleaner.threads": 1,
  };
}

/** A node of the cluster; `stop` takes a grace before SIGKILL (Kafka's 30 s by default). */
function clusterNode(options: KafkaNodeOptions): KafkaNode & { stop(graceMs?: number): Promise<void> } {
  let engine: KafkaEngine | undefined;
  let starting: Promise<void> | undefined;
  const halt = async (how: (running: KafkaEngine) => Promise<void>) => {
    await starting?.catch(() => {});
    const running = engine;
    engine = undefined;
    if (running) await how(running);
  };
  return {
    id: options.nodeId,
    broker: `127.0.0.1:${options.port}`,
    get running() {
      return engine !== undefined;
    },
    start() {
      if (engine) return Promise.resolve();
      starting ??= startKafkaNode(options)
        .then((started) => {
          engine = started;
        })
        .finally(() => {
          starting = undefined;
        });
      return starting;
    },
    stop: (graceMs?: number) => halt((running) => running.stop(graceMs)),
    kill: () => halt((running) => running.kill()),
  };
}
