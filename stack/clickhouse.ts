import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertPortFree, type Engine, type EngineOptions, onPath, spawnLogged, waitUntilReady } from "./process.ts";

const devServer = fileURLToPath(new URL("./clickhouse/dev-server.ts", import.meta.url));

/**
 * Starts a real `clickhouse server` when the binary is on PATH, otherwise the chdb-backed dev server,
 * which speaks the same HTTP interface. Either way it listens on 127.0.0.1:port only.
 */
export async function startClickHouse(options: EngineOptions): Promise<Engine> {
  await assertPortFree("clickhouse", options.port);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const proc = (await onPath("clickhouse"))
    ? spawnLogged("clickhouse", ["server", `--config-file=${writeServerConfig(dataDir, options.port)}`], options)
    : spawnLogged(process.execPath, [devServer], {
        logFile: options.logFile,
        env: { ...process.env, CHDB_DATA_DIR: dataDir, CHDB_PORT: String(options.port), CHDB_HOST: "127.0.0.1" },
      });
  const url = `http://127.0.0.1:${options.port}`;
  await waitUntilReady("clickhouse", proc, () => ping(url), 30_000);
  return { url, stop: () => proc.stop(10_000), kill: () => proc.kill() };
}

/** HTTP only (no native TCP, MySQL or interserver ports to collide with), the default user without a password. */
function writeServerConfig(dataDir: string, port: number): string {
  const file = join(dataDir, "config.xml");
  writeFileSync(
    file,
    `<clickhouse>
  <logger><console>1</console><level>information</level></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${port}</http_port>
  <path>${join(dataDir, "server")}/</path>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <profiles><default></default></profiles>
  <quotas><default></default></quotas>
</clickhouse>
`,
  );
  return file;
}

async function ping(url: string): Promise<boolean> {
  const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
  return res.ok && (await res.text()) === "Ok.\n";
}
