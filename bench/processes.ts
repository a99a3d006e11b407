import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { cpuSeconds } from "./rss.ts";

/** The process listening on 127.0.0.1:port (an engine's server), found through /proc: the engines keep no pid file. */
export function pidListeningOn(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is field 1 (ADDR:PORT in hex), st is field 3 (0A = LISTEN), the inode field 9.
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A" && fields[9]) inodes.add(`socket:[${fields[9]}]`);
    }
  }
  for (const pid of numericEntries("/proc")) {
    for (const fd of numericEntries(`/proc/${pid}/fd`)) {
      const target = readLink(`/proc/${pid}/fd/${fd}`);
      if (target && inodes.has(target)) return pid;
    }
  }
  throw new Error(`no process of this user listens on port ${port}`);
}

/** The direct children of a process whose command line contains `marker`. */
export function childrenRunning(parent: number, marker: string): number[] {
  return numericEntries("/proc").filter((pid) => {
    const stat = readOrEmpty(`/proc/${pid}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return ppid === parent && readOrEmpty(`/proc/${pid}/cmdline`).includes(marker);
  });
}

/** CPU seconds each named group of processes uses between start and stop(), from /proc/<pid>/stat. */
export function measureCpu(groups: Record<string, number[]>): { stop(): Record<string, number> } {
  const total = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, total(pids)]));
  return {
    stop: () =>
      Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, total(pids) - (before[name] ?? 0)])),
  };
}

/** A CPU breakdown as one line: each group's CPU seconds and share of the total, largest first. */
export function formatCpu(seconds: Record<string, number>, wallSeconds: number): string {
  const sum = Object.values(seconds).reduce((a, b) => a + b, 0);
  const parts = Object.entries(seconds)
    .sort((a, b) => b[1] - a[1])
    .map(([name, s]) => `${name} ${s.toFixed(1)} s (${((100 * s) / Math.max(sum, 1e-9)).toFixed(0)}%)`);
  return `${parts.join(", ")}; total ${sum.toFixed(1)} CPU s in ${wallSeconds.toFixed(1)} s (${(sum / wallSeconds).toFixed(2)} cores)`;
}

function numericEntries(dir: string): number[] {
  try {
    return readdirSync(dir)
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
