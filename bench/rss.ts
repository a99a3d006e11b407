import { readFileSync } from "node:fs";

/** A process's resident memory now, in MB (0 once it is gone). */
export function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : 0;
}

/** Samples the resident memory of processes every 250 ms; `stop()` gives each one's peak in MB. */
export function sampleRss(pids: number[]): { stop(): number[] } {
  const peaks = pids.map(() => 0);
  const sample = () => {
    for (const [i, pid] of pids.entries()) peaks[i] = Math.max(peaks[i] ?? 0, rssMb(pid));
  };
  const timer = setInterval(sample, 250);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

/** The whole machine's CPU time so far, from /proc/stat's first line (all cores, clock ticks): busy and total. */
export function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: idle and iowait are the time nothing ran.
  const total = fields.reduce((sum, value) => sum + value, 0);
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/** The share of all cores' time that was busy between two machineTicks() readings. */
export function busyShare(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}

/**
 * Waits until the machine is quiet: under `busy` of its cores' time over two half seconds running (background
 * merges, flushes and collections left by the load before), or `timeoutMs` passed. The seconds it took.
 */
export async function settle(busy = 0.2, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  let quiet = 0;
  while (quiet < 2 && performance.now() - started < timeoutMs) {
    const before = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 500));
    quiet = busyShare(before, machineTicks()) < busy ? quiet + 1 : 0;
  }
  return (performance.now() - started) / 1000;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
