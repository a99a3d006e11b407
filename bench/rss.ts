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
