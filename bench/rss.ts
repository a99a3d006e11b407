import { readFileSync } from "node:fs";

/** Samples the resident memory of processes every 250 ms; `stop()` gives each one's peak in MB. */
export function sampleRss(pids: number[]): { stop(): number[] } {
  const peaks = pids.map(() => 0);
  const sample = () => {
    for (const [i, pid] of pids.entries()) {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (match) peaks[i] = Math.max(peaks[i] ?? 0, Number(match[1]) / 1024);
    }
  };
  const timer = setInterval(sample, 250);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
