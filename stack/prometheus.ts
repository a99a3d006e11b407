import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { assertPortFree, type Engine, EngineError, spawnLogged, waitUntilReady } from "./process.ts";

const run = promisify(execFile);

/**
 * The paths of Debian's prometheus (2.42) and its promtool, for the checks of deploy/prometheus/ and tests
 * against a real Prometheus. Missing and root: installed with apt-get; otherwise throws, saying how to install it.
 */
export function ensurePrometheus(): Promise<{ prometheus: string; promtool: string }> {
  return ensureDebianPackage("prometheus", ["prometheus", "promtool"], "prometheus");
}

/** Debian's docker-compose (1.29), to validate docker-compose.yml without a Docker engine. */
export async function ensureDockerCompose(): Promise<string> {
  return (await ensureDebianPackage("docker-compose", ["docker-compose"]))["docker-compose"];
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

/**
 * The absolute paths of `binaries`, installing Debian's `pkg` first when one is missing and this runs as root.
 * Without recommends: prometheus's would add prometheus-node-exporter, one more daemon.
 */
async function ensureDebianPackage<B extends string>(
  pkg: string,
  binaries: B[],
  service?: string,
): Promise<Record<B, string>> {
  const found = findAll(binaries);
  if (found) return found;
  const missing = binaries.filter((binary) => !find(binary)).join(", ");
  if (process.getuid?.() !== 0) {
    throw new EngineError(
      pkg,
      `${missing} not on PATH: install it (apt-get install ${pkg}), or run as root to have it installed`,
    );
  }
  console.error(`[stack] ${pkg}: ${missing} not found; installing Debian's ${pkg} ...`);
  // A test file may install while another apt-get runs (the integration setup's redis-server): wait for its lock.
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  try {
    await run("apt-get", [...lock, "update", "-qq"]);
    await run("apt-get", [...lock, "install", "-y", "-qq", "--no-install-recommends", pkg], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch (err) {
    throw new EngineError(pkg, `apt-get install ${pkg} failed: ${(err as Error).message.split("\n")[0]}`);
  }
  if (service) await disableService(service);
  const installed = findAll(binaries);
  if (installed) return installed;
  throw new EngineError(pkg, `apt-get installed ${pkg}, yet ${missing} is not in /usr/bin nor on PATH`);
}

/**
 * The package starts its service (on :9090 for prometheus) wherever no policy-rc.d forbids it, and at every boot:
 * nothing here uses it, so stop and disable it. Best effort: a service left running does not break the checks.
 */
async function disableService(service: string): Promise<void> {
  const commands: [string, string[]][] = existsSync("/run/systemd/system")
    ? [["systemctl", ["disable", "--now", `${service}.service`]]]
    : [
        ["service", [service, "stop"]],
        ["update-rc.d", [service, "disable"]],
      ];
  for (const [command, args] of commands) await run(command, args).catch(() => undefined);
}

function findAll<B extends string>(binaries: B[]): Record<B, string> | undefined {
  const paths = binaries.map((binary) => [binary, find(binary)] as const);
  return paths.every(([, path]) => path !== undefined) ? (Object.fromEntries(paths) as Record<B, string>) : undefined;
}

function find(binary: string): string | undefined {
  const dirs = ["/usr/bin", ...(process.env.PATH ?? "").split(delimiter).filter(Boolean)];
  return dirs.map((dir) => join(dir, binary)).find(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// `node stack/prometheus.ts` (run by `npm test` before the suite): install it once, before test files race to.
if (import.meta.main) console.log(`[setup] prometheus: ${Object.values(await ensurePrometheus()).join(", ")}`);
