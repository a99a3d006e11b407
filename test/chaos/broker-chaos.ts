import { rmSync } from "node:fs";
import { join } from "node:path";
import { Admin } from "@platformatic/kafka";
import { loadConfig } from "../../src/config.ts";
import { provision } from "../../src/provision.ts";
import { startClickHouse } from "../../stack/clickhouse.ts";
import { startKafkaCluster } from "../../stack/kafka-cluster.ts";
import { freePort } from "../../stack/process.ts";
import { startValkey } from "../../stack/valkey.ts";
import { chaosEnv, startAppProcesses } from "./app-processes.ts";
import { type BrokerStep, runBrokerSteps } from "./broker-steps.ts";
import { waitForDrained } from "./drain.ts";
import { planEvents } from "./events.ts";
import { checkExactness, type Exactness } from "./exactness.ts";
import { waitForFullCount } from "./full-count.ts";
import { topicConfig, waitUntilInSync } from "./replicas.ts";
import { sendEvents } from "./senders.ts";

const BROKERS = 3;
const PARTITIONS = 8;
const MIN_INSYNC_REPLICAS = 2;

export interface BrokerChaosOptions {
  events: number;
  /** Share of sends that repeat an id already sent. */
  duplicateRate: number;
  /** How long the sending lasts; the broker steps should fit inside it. */
  sendSeconds: number;
  /** Events per POST /events: smaller batches time the senders' view more finely. */
  sendBatch: number;
  workers: number;
  /** Worker SIGKILLs between the broker steps (at most 4, one per gap). */
  workerKills: number;
  /** How long the leader stays dead before it is started again. */
  outageSeconds: number;
  dataDir: string;
  log?: (line: string) => void;
}

export interface SenderFigures {
  http503: number;
  timeouts: number;
  connectionErrors: number;
  retriedSends: number;
  longestWithout2xxSeconds: number;
  /** Seconds since the sending began. */
  longestWithout2xxFrom: number;
}

export interface BrokerChaosResult extends Exactness {
  sent: number;
  accepted: number;
  distinctAccepted: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  brokerSteps: BrokerStep[];
  workerKills: number;
  senders: SenderFigures;
  sendingSeconds: number;
  /** From the 2xx that completed the set of distinct ids to GET /stats counting them all. */
  fullCountSeconds: number;
  seconds: number;
}

/**
 * Sends events with duplicates through the real API to real workers on a 3-broker Kafka cluster (3 replicas,
 * 2 in sync for a write) while the broker leading most partitions is SIGKILLed and started again after
 * `outageSeconds`, then every broker is restarted in turn (SIGTERM, then the next once every replica is back in
 * sync), with worker SIGKILLs between the steps; then checks that every accepted id is stored exactly once.
 */
export async function runBrokerChaos(options: BrokerChaosOptions): Promise<BrokerChaosResult> {
  const log = options.log ?? ((line: string) => console.log(`[chaos] ${line}`));
  const began = Date.now();
  rmSync(options.dataDir, { recursive: true, force: true });
  const logDir = join(options.dataDir, "logs");
  const logs = (name: string) => join(logDir, `${name}.log`);
  const [valkeyPort, clickhousePort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const stops: (() => Promise<void>)[] = [];
  try {
    const [cluster, valkey, clickhouse] = await Promise.all([
      startKafkaCluster({ nodes: BROKERS, dataDir: join(options.dataDir, "kafka"), logDir }),
      startValkey({ port: valkeyPort, dataDir: join(options.dataDir, "valkey"), logFile: logs("valkey") }),
      startClickHouse({
        port: clickhousePort,
        dataDir: join(options.dataDir, "clickhouse"),
        logFile: logs("clickhouse"),
      }),
    ]);
    stops.push(cluster.stop, valkey.stop, clickhouse.stop);
    const env = chaosEnv(
      { kafkaBrokers: cluster.brokers, valkeyUrl: valkey.url, clickhouseUrl: clickhouse.url },
      apiPort,
      {
        KAFKA_PARTITIONS: String(PARTITIONS),
        KAFKA_REPLICATION_FACTOR: String(BROKERS),
        KAFKA_MIN_INSYNC_REPLICAS: String(MIN_INSYNC_REPLICAS),
      },
    );
    const config = loadConfig(env);
    await provision(config);
    const admin = new Admin({ clientId: "chaos-watch", bootstrapBrokers: cluster.brokers, retries: 0 });
    stops.push(() => admin.close());
    const topics = [config.KAFKA_TOPIC, config.KAFKA_DLQ_TOPIC];
    const { replicationFactor, minInsyncReplicas } = await checkReplication(admin, config.KAFKA_TOPIC);
    await waitUntilInSync(admin, topics, 60_000);
    log(
      `engines up; kafka ${env.KAFKA_BROKERS} (${PARTITIONS} partitions, ${replicationFactor} replicas, min ISR ${minInsyncReplicas}), valkey ${env.VALKEY_URL}, clickhouse ${env.CLICKHOUSE_URL}`,
    );
    const app = await startAppProcesses(env, options.workers, logs);
    stops.push(app.stop);
    const events = planEvents(options.events, options.duplicateRate);

    const sendingBegan = Date.now();
    const at = () => Math.round((Date.now() - sendingBegan) / 100) / 10;
    // Whichever of the broker steps and the sending fails first fails the run at once, and stops the other.
    const stopRun = new AbortController();
    stops.push(async () => stopRun.abort());
    const chaos = runBrokerSteps({
      nodes: cluster.nodes,
      admin,
      topics,
      app,
      workerKills: options.workerKills,
      outageSeconds: options.outageSeconds,
      firstStepAfterMs: Math.max(3000, options.sendSeconds * 50),
      at,
      log,
      signal: stopRun.signal,
    });
    // Copies are sent last: the full count is timed from the 2xx that completed the ids, during the sending.
    const everyIdAccepted = Promise.withResolvers<number>();
    const fullCount = everyIdAccepted.promise.then(async (from) => {
      const countedAt = await waitForFullCount(app.apiUrl, new Set(events.map((e) => e.id)).size, 240_000);
      return (countedAt - from) / 1000;
    });
    const sending = sendEvents(app.apiUrl, events, {
      sendSeconds: options.sendSeconds,
      batchSize: options.sendBatch,
      senders: 4,
      signal: stopRun.signal,
      onEveryIdAccepted: () => everyIdAccepted.resolve(Date.now()),
    });
    const [sent, { steps, workerKills }, fullCountSeconds] = await Promise.all([sending, chaos, fullCount]);
    const sendingSeconds = (sent.lastAcceptedAt - sent.startedAt) / 1000;
    log(`sent ${events.length} events in ${sendingSeconds.toFixed(0)}s (${sent.retriedSends} sends retried)`);
    const lateSteps = steps.filter((s) => s.inSyncAt > sendingSeconds);
    if (lateSteps.length > 0) log(`${lateSteps.length} broker steps ended after the sending: raise sendSeconds`);

    log(
      `GET /stats counted all ${sent.accepted.size} ids ${fullCountSeconds.toFixed(1)}s after the last of them had its 2xx`,
    );
    log("waiting for the workers to commit everything ...");
    await waitForDrained(config, 240_000);
    await app.stop();
    const exactness = await checkExactness(clickhouse.url, sent.accepted);

    const senders: SenderFigures = {
      http503: sent.unavailable,
      timeouts: sent.timeouts,
      connectionErrors: sent.connectionErrors,
      retriedSends: sent.retriedSends,
      longestWithout2xxSeconds: sent.longestWithout2xxMs / 1000,
      longestWithout2xxFrom: Math.round((sent.longestWithout2xxFrom - sent.startedAt) / 100) / 10,
    };
    const result: BrokerChaosResult = {
      sent: events.length,
      accepted: sent.acceptedCount,
      distinctAccepted: sent.accepted.size,
      ...exactness,
      replicationFactor,
      minInsyncReplicas,
      brokerSteps: steps,
      workerKills,
      senders,
      sendingSeconds: Math.round(sendingSeconds),
      fullCountSeconds: Math.round(fullCountSeconds * 10) / 10,
      seconds: Math.round((Date.now() - began) / 1000),
    };
    log(
      `senders saw ${senders.http503} 503s, ${senders.timeouts} timeouts, ${senders.connectionErrors} connection errors; longest stretch without a 2xx ${senders.longestWithout2xxSeconds.toFixed(1)}s (from ${senders.longestWithout2xxFrom}s)`,
    );
    log(
      `lost ${result.lost}, double-counted ${result.doubleCounted}; stored ${result.storedRows} rows for ${result.distinctAccepted} distinct accepted ids; rollup ${result.rollupTotal}`,
    );
    return result;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

/** The topic's replicas and min ISR as the brokers apply them: fails loudly if provisioning did not set them. */
async function checkReplication(admin: Admin, topic: string) {
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
  const replicationFactor = Math.min(...(metadata.topics.get(topic)?.partitions ?? []).map((p) => p.replicas.length));
  const minInsyncReplicas = Number(await topicConfig(admin, topic, "min.insync.replicas"));
  if (replicationFactor !== BROKERS || minInsyncReplicas !== MIN_INSYNC_REPLICAS) {
    throw new Error(
      `${topic} has ${replicationFactor} replicas and min.insync.replicas=${minInsyncReplicas}, not ${BROKERS} and ${MIN_INSYNC_REPLICAS}: provisioning did not apply KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS`,
    );
  }
  return { replicationFactor, minInsyncReplicas };
}
