import { rmSync } from "node:fs";
import { join } from "node:path";
import { startClickHouse } from "./clickhouse.ts";
import { startKafka } from "./kafka.ts";
import { repoRoot, testPort } from "./paths.ts";
import { assertEnginePortsFree, type EnginePort } from "./ports.ts";
import { startValkey } from "./valkey.ts";

export type Profile = "dev" | "test";

/** dev serves `npm start`; test has ports (shifted by TEST_PORT_OFFSET) and data of its own so `npm test` runs beside it. */
function settings(profile: Profile) {
  if (profile === "dev") {
    return { kafka: 9092, kafkaController: 9093, valkey: 6379, clickhouse: 8123, dataDir: ".data/dev", fresh: false };
  }
  return {
    kafka: testPort(29092),
    kafkaController: testPort(29093),
    valkey: testPort(26379),
    clickhouse: testPort(28123),
    dataDir: ".data/test",
    fresh: true,
  };
}

export interface StackEnv {
  KAFKA_BROKERS: string;
  VALKEY_URL: string;
  CLICKHOUSE_URL: string;
}

export interface Stack {
  env: StackEnv;
  stop(): Promise<void>;
}

/**
 * Starts the engines a profile needs, in parallel. For dev, an engine already given by the
 * environment (KAFKA_BROKERS, VALKEY_URL, CLICKHOUSE_URL) is used instead of a local one.
 */
export async function startStack(profile: Profile, env: NodeJS.ProcessEnv = process.env): Promise<Stack> {
  const p = settings(profile);
  const given = (name: keyof StackEnv) => (profile === "dev" ? env[name] : undefined);

  // Every port at once, before any engine starts: one line for all that are taken, not one failure per engine.
  const ports: EnginePort[] = [
    ...(given("KAFKA_BROKERS")
      ? []
      : [
          { engine: "Kafka", port: p.kafka, use: `KAFKA_BROKERS=127.0.0.1:${p.kafka}` },
          { engine: "Kafka's controller", port: p.kafkaController },
        ]),
    ...(given("VALKEY_URL")
      ? []
      : [{ engine: "Valkey", port: p.valkey, use: `VALKEY_URL=redis://127.0.0.1:${p.valkey}` }]),
    ...(given("CLICKHOUSE_URL")
      ? []
      : [{ engine: "ClickHouse", port: p.clickhouse, use: `CLICKHOUSE_URL=http://127.0.0.1:${p.clickhouse}` }]),
  ];
  await assertEnginePortsFree(profile, ports);
  // Only once the ports are free: a test stack already running on them keeps its data.
  const dataDir = join(repoRoot, p.dataDir);
  if (p.fresh) rmSync(dataDir, { recursive: true, force: true });
  const log = (engine: string) => join(dataDir, "logs", `${engine}.log`);
  const local = (value: string) => ({ value, stop: async () => {} });
  const started = await Promise.allSettled([
    given("KAFKA_BROKERS")
      ? local(given("KAFKA_BROKERS") ?? "")
      : startKafka({
          port: p.kafka,
          controllerPort: p.kafkaController,
          dataDir: join(dataDir, "kafka"),
          logFile: log("kafka"),
        }).then((k) => ({ value: k.brokers.join(","), stop: k.stop })),
    given("VALKEY_URL")
      ? local(given("VALKEY_URL") ?? "")
      : startValkey({ port: p.valkey, dataDir: join(dataDir, "valkey"), logFile: log("valkey") }).then((v) => ({
          value: v.url,
          stop: v.stop,
        })),
    given("CLICKHOUSE_URL")
      ? local(given("CLICKHOUSE_URL") ?? "")
      : startClickHouse({ port: p.clickhouse, dataDir: join(dataDir, "clickhouse"), logFile: log("clickhouse") }).then(
          (c) => ({ value: c.url, stop: c.stop }),
        ),
  ]);
  const engines = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const stop = async () => {
    await Promise.all(engines.map((e) => e.stop()));
  };
  const failures = started.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
  if (failures.length > 0) {
    await stop();
    throw new Error(failures.join("\n"));
  }
  const [kafka, valkey, clickhouse] = engines;
  return {
    env: {
      KAFKA_BROKERS: kafka?.value ?? "",
      VALKEY_URL: valkey?.value ?? "",
      CLICKHOUSE_URL: clickhouse?.value ?? "",
    },
    stop,
  };
}
