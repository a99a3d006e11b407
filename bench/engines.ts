import { rmSync } from "node:fs";
import { join } from "node:path";
import { startClickHouse } from "../stack/clickhouse.ts";
import { startKafka } from "../stack/kafka.ts";
import { freePort } from "../stack/process.ts";
import { startValkey } from "../stack/valkey.ts";
import { pidListeningOn } from "./processes.ts";

/** A benchmark's own Kafka, Valkey and ClickHouse on free ports: their URLs, their server pids, and how to stop them. */
export interface BenchEngines {
  env: { KAFKA_BROKERS: string; VALKEY_URL: string; CLICKHOUSE_URL: string };
  pids: { kafka: number; valkey: number; clickhouse: number };
  stop(): Promise<void>;
}

/**
 * The app's environment against `engines`: its port, warnings only, no keys (throughput, not keys: whatever keys
 * file the developer has is left out), free metrics ports (a benchmark runs beside `npm start`, which has the fixed
 * ones); `overrides` on top.
 */
export function benchAppEnv(
  engines: BenchEngines,
  apiPort: number,
  overrides: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...engines.env,
    PORT: String(apiPort),
    LOG_LEVEL: "warn",
    AUTH: "off",
    API_METRICS_PORT: "0",
    WORKER_METRICS_PORT: "0",
    QUERY_METRICS_PORT: "0",
    ...overrides,
  };
}

/** Starts the three engines as the stack does, with fresh data under `dataDir` (logs in `dataDir`/logs). */
export async function startBenchEngines(dataDir: string): Promise<BenchEngines> {
  rmSync(dataDir, { recursive: true, force: true });
  const [kafkaPort, controllerPort, valkeyPort, clickhousePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ] as [number, number, number, number];
  const log = (name: string) => join(dataDir, "logs", `${name}.log`);
  const [kafka, valkey, clickhouse] = await Promise.all([
    startKafka({ port: kafkaPort, controllerPort, dataDir: join(dataDir, "kafka"), logFile: log("kafka") }),
    startValkey({ port: valkeyPort, dataDir: join(dataDir, "valkey"), logFile: log("valkey") }),
    startClickHouse({ port: clickhousePort, dataDir: join(dataDir, "clickhouse"), logFile: log("clickhouse") }),
  ]);
  return {
    env: { KAFKA_BROKERS: kafka.brokers.join(","), VALKEY_URL: valkey.url, CLICKHOUSE_URL: clickhouse.url },
    pids: {
      kafka: pidListeningOn(kafkaPort),
      valkey: pidListeningOn(valkeyPort),
      clickhouse: pidListeningOn(clickhousePort),
    },
    stop: async () => {
      await Promise.all([kafka.stop(), valkey.stop(), clickhouse.stop()]);
    },
  };
}
