import { mkdirSync } from "node:fs";
import { ensureDebianPackage } from "./debian.ts";
import { assertPortFree, type Engine, spawnLogged, waitUntilReady } from "./process.ts";

/**
 * The paths of Debian's prometheus (2.42) and its promtool, for the checks of deploy/prometheus/ and tests
 * against a real Prometheus. Missing and root: installed with apt-get; otherwise throws, saying how to install it.
 */
export function ensurePrometheus(): Promise<{ prometheus: string; promtool: string }> {
  return ensureDebianPackage("prometheus", ["prometheus", "promtool"], { service: "prometheus" });
}

export interface PrometheusOptions {
  configFile: string;
  port: number;
  dataDir: string;
  logFile: string;
}

/**
 * Runs Prometheus on loopback with `configFile` (relative paths in it, like rule_files, are taken from the
 * file's folder), until stop(). Never the service Debian's package may have set up: its port and data are its own.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<Pick<Engine, "url" | "stop">> {
  await assertPortFree("prometheus", options.port);
  const { prometheus } = await ensurePrometheus();
  mkdirSync(options.dataDir, { recursive: true });
  const address = `127.0.0.1:${options.port}`;
  const args = [
    `--config.file=${options.configFile}`,
    `--storage.tsdb.path=${options.dataDir}`,
    // A test's samples, not history worth keeping.
    "--storage.tsdb.retention.time=1h",
    `--web.listen-address=${address}`,
  ];
  const proc = spawnLogged(prometheus, args, { logFile: options.logFile });
  const url = `http://${address}`;
  const ready = async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) })).ok;
  await waitUntilReady("prometheus", proc, ready, 30_000);
  return { url, stop: () => proc.stop(10_000) };
}

// `node stack/prometheus.ts` (run by `npm test` before the suite): install it once, before test files race to.
if (import.meta.main) console.log(`[setup] prometheus: ${Object.values(await ensurePrometheus()).join(", ")}`);
