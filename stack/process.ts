import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** One line naming the engine, the cause and where to look. */
export class EngineError extends Error {
  override name = "EngineError";
  constructor(engine: string, cause: string, logFile?: string) {
    super(`${engine}: ${cause}${logFile ? ` (log: ${logFile})` : ""}`);
  }
}

/** Where a local engine listens, keeps its data and writes its log. */
export interface EngineOptions {
  port: number;
  dataDir: string;
  logFile: string;
}

/** A started local engine at `url`. */
export interface Engine {
  url: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface EngineProcess {
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: a crash, for chaos tests. */
  kill(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A parent that exits (or is killed by Ctrl-C) takes its engines with it: no stray processes.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function spawnLogged(
  command: string,
  args: string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): EngineProcess {
  mkdirSync(dirname(options.logFile), { recursive: true });
  const out = openSync(options.logFile, "a");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", out, out],
    // Own process group: a Ctrl-C in the terminal reaches only the parent, which stops engines in order.
    detached: true,
  });
  running.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (err) => {
      running.delete(child);
      resolve(`spawn failed: ${err.message}`);
    });
  });
  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = sleep(graceMs, undefined, { ref: false }).then(() => "timeout" as const);
    if ((await Promise.race([exited, timer])) === "timeout") {
      child.kill("SIGKILL");
      await exited;
    }
  };
  return {
    child,
    logFile: options.logFile,
    exited,
    stop: (graceMs = 30_000) => signalAndWait("SIGTERM", graceMs),
    kill: () => signalAndWait("SIGKILL", 5_000),
  };
}

/** Polls check() until it is true; fails with the engine's name if the process dies or time runs out. */
export async function waitUntilReady(
  engine: string,
  proc: EngineProcess,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitedWith: number | string | undefined;
  void proc.exited.then((code) => {
    exitedWith = code;
  });
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) {
      throw new EngineError(
        engine,
        `exited (${exitedWith}) before it was ready: ${lastLine(proc.logFile)}`,
        proc.logFile,
      );
    }
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  await proc.stop(5_000);
  throw new EngineError(engine, `not ready after ${timeoutMs / 1000}s: ${lastLine(proc.logFile)}`, proc.logFile);
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, "utf8").trim().split("\n");
    return (lines.at(-1) ?? "").slice(0, 300) || "no output";
  } catch {
    return "no output";
  }
}

/** Whether nothing listens on host:port: a listen there succeeds (and is closed at once). */
export function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function assertPortFree(engine: string, port: number, host = "127.0.0.1"): Promise<void> {
  if (!(await portFree(port, host))) {
    throw new EngineError(engine, `port ${host}:${port} is already in use (another instance running?)`);
  }
}

/** A port the OS just handed out, for engines that tests start on their own. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function onPath(binary: string): Promise<boolean> {
  try {
    await run(binary, ["--version"]);
    return true;
  } catch {
    return false;
  }
}
