import { availableParallelism } from "node:os";
import type { Config } from "../src/config.ts";
import {
  apiMetricsPort,
  apiPort,
  type PortSetting,
  portInUseMessage,
  queryMetricsPort,
  queryPort,
  workerMetricsPort,
} from "../src/port-in-use.ts";
import { portFree } from "./process.ts";

/** Ports that are taken, in one line that says what to do: a caller prints its message alone, no stack trace. */
export class PortsInUseError extends Error {
  override name = "PortsInUseError";
}

/** A port a local engine would listen on, and, for a client port, the variable that names that engine instead. */
export interface EnginePort {
  engine: string;
  port: number;
  /** KAFKA_BROKERS=…: set, `npm start` uses the engine there and starts none. */
  use?: string;
}

/** Every port `npm start` would give the app's processes, per variable (pm2 adds the instance to a metrics base). */
export function appPorts(config: Config): PortSetting[][] {
  const instances = (count: number) => Array.from({ length: count }, (_, i) => i);
  const metrics = (base: number, count: number, setting: (config: Config) => PortSetting) =>
    config.METRICS === "off" || base === 0
      ? []
      : [instances(count).map((i) => setting({ ...config, NODE_APP_INSTANCE: i }))];
  // The instance counts ecosystem.config.cjs defaults to: a process per core, one query process.
  const cores = availableParallelism();
  return [
    [apiPort(config)],
    [queryPort(config)],
    ...metrics(config.API_METRICS_PORT, config.API_INSTANCES ?? cores, apiMetricsPort),
    ...metrics(config.QUERY_METRICS_PORT, config.QUERY_INSTANCES ?? 1, queryMetricsPort),
    ...metrics(config.WORKER_METRICS_PORT, config.WORKER_INSTANCES ?? cores, workerMetricsPort),
  ];
}

/**
 * Before `npm start` starts anything: throws one line naming, for each variable, the first of its ports that is
 * taken, with the way out. Without it, the API's processes would fail one by one under pm2, and a health check
 * could be answered by whatever holds the port.
 */
export async function assertAppPortsFree(config: Config): Promise<void> {
  const taken: string[] = [];
  for (const ports of appPorts(config)) {
    for (const setting of ports) {
      if (await portFree(setting.port, setting.host)) continue;
      taken.push(portInUseMessage(setting));
      break;
    }
  }
  if (taken.length > 0) throw new PortsInUseError(taken.join("; "));
}

/**
 * Throws one line naming every engine port in use and the way out: for `npm start` (dev), stop what holds them
 * or use the engines there through their variables; for the test engines, another TEST_PORT_OFFSET.
 */
export async function assertEnginePortsFree(profile: "dev" | "test", ports: EnginePort[]): Promise<void> {
  const taken: EnginePort[] = [];
  for (const entry of ports) if (!(await portFree(entry.port))) taken.push(entry);
  if (taken.length === 0) return;
  const list = taken.map((t) => `127.0.0.1:${t.port} (${t.engine})`).join(", ");
  if (profile === "test") {
    const offset = Number(process.env.TEST_PORT_OFFSET ?? 0);
    throw new PortsInUseError(
      `ports already in use: ${list}, the test engines' ports shifted by TEST_PORT_OFFSET=${offset} ` +
        `(another npm test?): set TEST_PORT_OFFSET to another value from 0 to 2000, e.g. TEST_PORT_OFFSET=${offset >= 1900 ? offset - 100 : offset + 100}`,
    );
  }
  const uses = taken.flatMap((t) => (t.use ? [t.use] : []));
  throw new PortsInUseError(
    `ports already in use: ${list}, where npm start starts its own engines (another npm start?): stop what holds ` +
      `them${uses.length > 0 ? `, or use the engines there instead: ${uses.join(" ")} npm start` : ""}`,
  );
}
