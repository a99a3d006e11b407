import { setTimeout as sleep } from "node:timers/promises";
import type { Admin } from "@platformatic/kafka";
import type { KafkaNode } from "../../stack/kafka-cluster.ts";
import type { AppProcesses } from "./app-processes.ts";
import { leaderOfMostPartitions, partitionsLedBy, waitUntilInSync } from "./replicas.ts";

/** Gaps between the five broker steps (the leader's kill, its restart, three rolling restarts). */
const GAPS = 4;

export interface BrokerStep {
  action: "SIGKILL" | "SIGTERM";
  node: number;
  broker: string;
  /** Partitions of the impressions topic it led just before. */
  partitionsLed: number;
  /** Seconds since the sending began: when it went down, was serving again, had every replica in sync. */
  downAt: number;
  upAt: number;
  inSyncAt: number;
}

export interface BrokerStepsOptions {
  nodes: KafkaNode[];
  admin: Admin;
  topics: string[];
  app: AppProcesses;
  /** Worker SIGKILLs, spread over the gaps between the five broker steps (at most one per gap). */
  workerKills: number;
  /** How long the killed leader stays down. */
  outageSeconds: number;
  /** Traffic first, so the kill hits a pipeline in its steady state. */
  firstStepAfterMs: number;
  /** Seconds since the sending began. */
  at: () => number;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** The leader kill and its restart, then a rolling restart of every broker, with worker kills in between. */
export async function runBrokerSteps(
  options: BrokerStepsOptions,
): Promise<{ steps: BrokerStep[]; workerKills: number }> {
  const { nodes, admin, topics, app, at, log, signal } = options;
  if (options.workerKills > GAPS) throw new Error(`at most ${GAPS} worker kills: one in each gap between broker steps`);
  const [topic] = topics as [string];
  // Which gaps between the five broker steps get a worker kill: spread evenly over the four.
  const killIn = new Set(
    Array.from({ length: options.workerKills }, (_, i) => Math.floor((i * GAPS) / options.workerKills)),
  );
  let workerKills = 0;
  const gap = async (index: number) => {
    await sleep(1000 + Math.random() * 2000);
    signal.throwIfAborted();
    if (!killIn.has(index)) return;
    const i = await app.crashWorker();
    workerKills++;
    log(`SIGKILL worker ${i} (${workerKills}) at ${at()}s`);
    await sleep(1000 + Math.random() * 2000);
  };
  const metadata = () => admin.metadata({ topics: [topic], forceUpdate: true });
  const steps: BrokerStep[] = [];

  await sleep(options.firstStepAfterMs);
  signal.throwIfAborted();
  const leader = leaderOfMostPartitions(await metadata(), topic);
  const victim = nodes.find((node) => node.broker === leader.broker);
  if (!victim) throw new Error(`the leader ${leader.broker} is none of the cluster's nodes`);
  const killedAt = Date.now();
  await victim.kill();
  const downAt = at();
  log(`SIGKILL broker ${victim.id} (${victim.broker}), leader of ${leader.partitions} partitions, at ${downAt}s`);
  await gap(0);
  await sleep(Math.max(0, killedAt + options.outageSeconds * 1000 - Date.now()));
  signal.throwIfAborted();
  await victim.start();
  const upAt = at();
  await waitUntilInSync(admin, topics, 120_000);
  steps.push({
    action: "SIGKILL",
    node: victim.id,
    broker: victim.broker,
    partitionsLed: leader.partitions,
    downAt,
    upAt,
    inSyncAt: at(),
  });
  log(`broker ${victim.id} started again at ${upAt}s; every replica in sync at ${at()}s`);

  for (const [n, node] of nodes.entries()) {
    await gap(n + 1);
    const partitionsLed = partitionsLedBy(await metadata(), topic, node.id);
    const stoppingAt = at();
    log(`SIGTERM broker ${node.id} (${node.broker}), leader of ${partitionsLed} partitions, at ${stoppingAt}s`);
    await node.stop();
    signal.throwIfAborted();
    await node.start();
    const backAt = at();
    await waitUntilInSync(admin, topics, 120_000);
    steps.push({
      action: "SIGTERM",
      node: node.id,
      broker: node.broker,
      partitionsLed,
      downAt: stoppingAt,
      upAt: backAt,
      inSyncAt: at(),
    });
    log(`broker ${node.id} started again at ${backAt}s; every replica in sync at ${at()}s`);
  }
  return { steps, workerKills };
}
