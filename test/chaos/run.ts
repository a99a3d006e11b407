import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config.ts";
import { provision } from "../../src/provision.ts";
import { startClickHouse } from "../../stack/clickhouse.ts";
import { startKafka } from "../../stack/kafka.ts";
import { repoRoot } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { startValkey } from "../../stack/valkey.ts";
import { chaosEnv, startAppProcesses } from "./app-processes.ts";
import { type ChaosArgs, ChaosArgsError, parseChaosArgs } from "./args.ts";
import { runBrokerChaos } from "./broker-chaos.ts";
import { waitForDrained } from "./drain.ts";
import { planEvents } from "./events.ts";
import { checkExactness, type Exactness, isExact } from "./exactness.ts";
import { sendEvents } from "./senders.ts";

export interface ChaosOptions {
  events: number;
  /** Share of sends that repeat an id already sent. */
  duplicateRate: number;
  /** How long the sending lasts; the kills and restarts happen inside it. */
  sendSeconds: number;
  workers: number;
  workerKills: number;
  dataDir: string;
  log?: (line: string) => void;
}

export interface ChaosResult extends Exactness {
  sent: number;
  accepted: number;
  distinctAccepted: number;
  workerKills: number;
  engineRestarts: string[];
  retriedSends: number;
  seconds: number;
}

/**
 * Sends events with duplicates through the real API to real worker processes while killing workers with
 * SIGKILL and restarting Kafka, ClickHouse and Valkey; then checks that every accepted id is stored exactly
 * once and that the rollup agrees. Starts engines of its own (own ports, own data dir) since it restarts them.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => console.log(`[chaos] ${line}`));
  const began = Date.now();
  rmSync(options.dataDir, { recursive: true, force: true });
  const logs = (name: string) => join(options.dataDir, "logs", `${name}.log`);
  const [kafkaPort, controllerPort, valkeyPort, clickhousePort, apiPort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const kafkaOptions = {
    port: kafkaPort as number,
    controllerPort: controllerPort as number,
    dataDir: join(options.dataDir, "kafka"),
    logFile: logs("kafka"),
  };
  const valkeyOptions = {
    port: valkeyPort as number,
    dataDir: join(options.dataDir, "valkey"),
    logFile: logs("valkey"),
  };
  const clickhouseOptions = {
    port: clickhousePort as number,
    dataDir: join(options.dataDir, "clickhouse"),
    logFile: logs("clickhouse"),
  };
  let [kafka, valkey, clickhouse] = await Promise.all([
    startKafka(kafkaOptions),
    startValkey(valkeyOptions),
    startClickHouse(clickhouseOptions),
  ]);
  const env = chaosEnv(
    { kafkaBrokers: kafka.brokers, valkeyUrl: valkey.url, clickhouseUrl: clickhouse.url },
    apiPort as number,
  );
  const config = loadConfig(env);
  await provision(config);
  log(`engines up; kafka ${env.KAFKA_BROKERS}, valkey ${env.VALKEY_URL}, clickhouse ${env.CLICKHOUSE_URL}`);
  const app = await startAppProcesses(env, options.workers, logs);
  const events = planEvents(options.events, options.duplicateRate);

  const chaos = (async () => {
    const steps = options.workerKills + 3;
    const every = (options.sendSeconds * 1000) / (steps + 1);
    const engineAt = new Map([
      [Math.floor(steps * 0.25), "kafka"],
      [Math.floor(steps * 0.5), "clickhouse"],
      [Math.floor(steps * 0.75), "valkey"],
    ]);
    const restarted: string[] = [];
    let kills = 0;
    for (let step = 0; step < steps; step++) {
      // Random moments, mostly while events are still being sent (restarts themselves take seconds).
      await sleep(every * (0.3 + 0.7 * Math.random()));
      const engine = engineAt.get(step);
      if (engine === "kafka") {
        log("restarting Kafka");
        await kafka.stop();
        kafka = await startKafka(kafkaOptions);
      } else if (engine === "clickhouse") {
        log("restarting ClickHouse");
        await clickhouse.stop();
        clickhouse = await startClickHouse(clickhouseOptions);
      } else if (engine === "valkey") {
        log("killing Valkey (SIGKILL) and restarting it from its AOF");
        await valkey.kill();
        valkey = await startValkey(valkeyOptions);
      } else {
        const i = await app.crashWorker();
        kills++;
        log(`SIGKILL worker ${i} (${kills})`);
      }
      if (engine) restarted.push(engine);
    }
    return { kills, restarted };
  })();

  const sent = await sendEvents(app.apiUrl, events, { sendSeconds: options.sendSeconds, batchSize: 250, senders: 4 });
  log(
    `sent ${events.length} events in ${((Date.now() - sent.startedAt) / 1000).toFixed(0)}s (${sent.retriedSends} sends retried)`,
  );
  const { kills, restarted } = await chaos;

  log("waiting for the workers to commit everything ...");
  await waitForDrained(config, 240_000);
  await app.stop();
  const exactness = await checkExactness(clickhouse.url, sent.accepted);
  await Promise.all([kafka.stop(), valkey.stop(), clickhouse.stop()]);

  const result: ChaosResult = {
    sent: events.length,
    accepted: sent.acceptedCount,
    distinctAccepted: sent.accepted.size,
    ...exactness,
    workerKills: kills,
    engineRestarts: restarted,
    retriedSends: sent.retriedSends,
    seconds: Math.round((Date.now() - began) / 1000),
  };
  log(
    `lost ${result.lost}, double-counted ${result.doubleCounted}; stored ${result.storedRows} rows for ${result.distinctAccepted} distinct accepted ids; rollup ${result.rollupTotal}`,
  );
  return result;
}

if (import.meta.main) {
  let args: ChaosArgs;
  try {
    args = parseChaosArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof ChaosArgsError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
  const events = Number(process.env.CHAOS_EVENTS ?? 200_000);
  const sendSeconds = process.env.CHAOS_SEND_SECONDS ? Number(process.env.CHAOS_SEND_SECONDS) : undefined;
  if (args.brokers === 3) {
    const result = await runBrokerChaos({
      events,
      duplicateRate: 0.1,
      sendSeconds: sendSeconds ?? 120,
      sendBatch: 100,
      workers: 2,
      workerKills: 4,
      outageSeconds: 10,
      dataDir: join(repoRoot, ".data/chaos-brokers"),
    });
    console.log(JSON.stringify(result, null, 2));
    process.exit(isExact(result, result.distinctAccepted) ? 0 : 1);
  }
  const result = await runChaos({
    events,
    duplicateRate: 0.1,
    sendSeconds: sendSeconds ?? 120,
    workers: 2,
    workerKills: 12,
    dataDir: join(repoRoot, ".data/chaos"),
  });
  console.log(JSON.stringify(result, null, 2));
  process.exit(isExact(result, result.distinctAccepted) ? 0 : 1);
}
