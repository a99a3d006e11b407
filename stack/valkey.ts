import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
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
  const args = [
    "--port",
    String(options.port),
    "--bind",
    "127.0.0.1",
    "--dir",
    options.dataDir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--save",
    "",
    "--daemonize",
    "no",
    "--logfile",
    "",
  ];
  const proc = spawnLogged(binary, args, { logFile: options.logFile });
  await waitUntilReady("valkey", proc, () => ping(options.port), 30_000);
  return { url: `redis://127.0.0.1:${options.port}`, stop: () => proc.stop(10_000), kill: () => proc.kill() };
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
