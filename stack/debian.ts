import { execFile } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { EngineError } from "./process.ts";

const run = promisify(execFile);

/**
 * The absolute paths of `binaries`, installing Debian's `pkg` first when one is missing and this runs as root.
 * Without recommends unless asked (prometheus's would add prometheus-node-exporter, one more daemon); a
 * `service` the package starts is stopped and disabled.
 */
export async function ensureDebianPackage<B extends string>(
  pkg: string,
  binaries: B[],
  { service, recommends = false }: { service?: string; recommends?: boolean } = {},
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
    const withRecommends = recommends ? [] : ["--no-install-recommends"];
    await run("apt-get", [...lock, "install", "-y", "-qq", ...withRecommends, pkg], {
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
