import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/**
 * Gives this whole process at least the niceness `nice` (0-19; higher yields the CPU to others), never less than
 * it has (which would need privileges). On Linux a niceness belongs to a thread, and V8's and libuv's threads
 * already run, so each thread of /proc/self/task gets it; threads started later inherit it. Elsewhere, the
 * process's. Returns the niceness the process now has.
 */
export function lowerPriority(nice: number): number {
  let threads: number[];
  try {
    threads = readdirSync("/proc/self/task").map(Number);
  } catch {
    threads = [0];
  }
  for (const thread of threads) {
    try {
      if (getPriority(thread) < nice) setPriority(thread, nice);
    } catch {
      // A thread that ended since the listing.
    }
  }
  return getPriority();
}
