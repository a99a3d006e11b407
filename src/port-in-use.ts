import { type Config, metricsPort } from "./config.ts";

/** A port a process listens on: what listens there, the variable that set it, and how to get out of a clash. */
export interface PortSetting {
  what: string;
  host: string;
  port: number;
  /** The variable (and value) the port comes from, e.g. `PORT=3000`. */
  setBy: string;
  /** What a person can do, e.g. `set PORT to a free port`. */
  wayOut: string;
}

export const isPortInUse = (error: unknown): boolean =>
  (error as NodeJS.ErrnoException | undefined)?.code === "EADDRINUSE";

/** One line: the port, what wanted it, the variable that set it, the way out. */
export function portInUseMessage(setting: PortSetting): string {
  return `port ${setting.host}:${setting.port} (${setting.what}, ${setting.setBy}) is already in use: ${setting.wayOut}`;
}

/** The API's own port. */
export function apiPort(config: Config): PortSetting {
  return {
    what: "the API",
    host: config.HOST,
    port: config.PORT,
    setBy: `PORT=${config.PORT}`,
    wayOut: `another API (npm start?) may hold it; set PORT to a free port, e.g. PORT=${config.PORT + 1}`,
  };
}

/** The query API's port under `npm start` (ecosystem.config.cjs gives it to the query app as PORT). */
export function queryPort(config: Config): PortSetting {
  return {
    what: "the query API",
    host: config.HOST,
    port: config.QUERY_PORT,
    setBy: `QUERY_PORT=${config.QUERY_PORT}`,
    wayOut: `another query API (npm start?) may hold it; set QUERY_PORT to a free port, e.g. QUERY_PORT=${config.QUERY_PORT + 1}`,
  };
}

/** A process's metrics port: a base variable plus pm2's instance number, 0 for any free port. */
function metricsSetting(what: string, variable: string, base: number, config: Config): PortSetting {
  const instance = config.NODE_APP_INSTANCE;
  return {
    what,
    host: config.METRICS_HOST,
    port: metricsPort(config, base),
    setBy: instance > 0 ? `${variable}=${base} + NODE_APP_INSTANCE ${instance}` : `${variable}=${base}`,
    wayOut: `set ${variable} to a free port, or ${variable}=0 to pick any free one (METRICS=off serves none)`,
  };
}

export const apiMetricsPort = (config: Config) =>
  metricsSetting("the API's metrics", "API_METRICS_PORT", config.API_METRICS_PORT, config);

export const queryMetricsPort = (config: Config) =>
  metricsSetting("the query API's metrics", "QUERY_METRICS_PORT", config.QUERY_METRICS_PORT, config);

export const workerMetricsPort = (config: Config) =>
  metricsSetting("the worker's metrics", "WORKER_METRICS_PORT", config.WORKER_METRICS_PORT, config);

/**
 * Awaits `listening`. A port already in use ends the process with the one line on stderr and exit code 1, no
 * stack trace: a person can act on it at once. Any other error is thrown as it is.
 */
export async function listenOrExit<T>(name: string, setting: PortSetting, listening: Promise<T>): Promise<T> {
  try {
    return await listening;
  } catch (error) {
    if (!isPortInUse(error)) throw error;
    process.stderr.write(`${name}: ${portInUseMessage(setting)}\n`);
    process.exit(1);
  }
}
