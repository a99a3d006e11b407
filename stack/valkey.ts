import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import {
  assertPortFree,
  type Engine,
  EngineError,
  type EngineOptions,
  onPath,
  spawnLogged,
  waitUntilReady,
} from "./process.ts";

const run = promisify(execFile);

/**
 * Starts valkey-server, or Debian's redis-server 7 (same protocol) where Valkey is not packaged.
 * appendfsync always: a dedup claim that Valkey acknowledged must survive a crash of Valkey itself,
 * or a later copy of that impression would be counted again. Pipelined claims share one fsync.
 */
export async function startValkey(options: EngineOptions): Promise<Engine> {
  await assertPortFree("valkey", options.port);
  const binary = await findServerBinary(options.logFile);
  mkdirSync(options.dataDir, { recursive: true });
  const proc = spawnLogged(binary, serverArgs(options.port, options.dataDir), { logFile: options.logFile });
  await waitUntilReady("valkey", proc, () => ping(options.port), 30_000);
  return { url: `redis://127.0.0.1:${options.port}`, stop: () => proc.stop(10_000), kill: () => proc.kill() };
}

function serverArgs(port: number, dataDir: string): string[] {
  return [
    ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dataDir],
    ...["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", ""],
  ];
}

export interface ValkeyCluster {
  /** One URL per node: what VALKEY_URL lists with VALKEY_CLUSTER=true. */
  urls: string[];
  stop(): Promise<void>;
}

/**
 * A Valkey Cluster of one primary per port on this host, for tests of cluster mode. Each node also listens
 * on its port + 10000 (the cluster bus), so ports must stay below 55536.
 */
export async function startValkeyCluster(options: { ports: number[]; dataDir: string }): Promise<ValkeyCluster> {
  const binary = await findServerBinary(join(options.dataDir, "cluster.log"));
  const nodes: ReturnType<typeof spawnLogged>[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop(10_000)));
  };
  try {
    for (const port of options.ports) {
      await assertPortFree("valkey cluster", port);
      await assertPortFree("valkey cluster bus", port + 10_000);
      const dataDir = join(options.dataDir, String(port));
      mkdirSync(dataDir, { recursive: true });
      const args = [...serverArgs(port, dataDir), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
      const node = spawnLogged(binary, args, { logFile: join(options.dataDir, `${port}.log`) });
      nodes.push(node);
      await waitUntilReady(`valkey cluster node ${port}`, node, () => ping(port), 30_000);
    }
    const cli = binary.replace(/-server$/, "-cli");
    const addresses = options.ports.map((port) => `127.0.0.1:${port}`);
    await run(cli, ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"]);
    for (const port of options.ports) {
      const deadline = Date.now() + 30_000;
      while (!(await run(cli, ["-p", String(port), "cluster", "info"])).stdout.includes("cluster_state:ok")) {
        if (Date.now() > deadline)
          throw new EngineError("valkey cluster", `node ${port} did not reach cluster_state:ok`);
        await sleep(100);
      }
    }
  } catch (error) {
    await stop();
    throw error instanceof EngineError ? error : new EngineError("valkey cluster", (error as Error).message);
  }
  return { urls: options.ports.map((port) => `redis://127.0.0.1:${port}`), stop };
}

async function findServerBinary(logFile: string): Promise<string> {
  for (const candidate of ["valkey-server", "redis-server"]) {
    if (await onPath(candidate)) return candidate;
  }
  if (process.getuid?.() === 0) {
    console.error("[stack] valkey: neither valkey-server nor redis-server found; installing Debian's redis-server ...");
    try {
      await run("apt-get", ["update", "-qq"]);
      await run("apt-get", ["install", "-y", "-qq", "redis-server"], {
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
      if (await onPath("redis-server")) return "redis-server";
    } catch (err) {
      throw new EngineError(
        "valkey",
        `apt-get install redis-server failed: ${(err as Error).message.split("\n")[0]}`,
        logFile,
      );
    }
  }
  throw new EngineError(
    "valkey",
    "no valkey-server or redis-server on PATH: install one (apt-get install redis-server)",
    logFile,
  );
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("+PONG"));
    });
    socket.once("error", () => resolve(false));
  });
}
