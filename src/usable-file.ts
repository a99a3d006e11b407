import { setTimeout as sleepFor } from "node:timers/promises";
import { fingerprint } from "./watched-file.ts";

export interface WhenUsableOptions<T, E extends Error> {
  /** Starts with the file (a watcher of it, say); throws an E while the file cannot be used. */
  use: (path: string) => T;
  /** Whether what `use` threw is the file's refusal (anything else is a bug, and is thrown on). */
  refused: (error: unknown) => error is E;
  /** The first refusal, then each one that says something else (a fix that went wrong another way). */
  onRefused: (error: E) => void;
  intervalMs?: number;
  /** What tells a changed file apart; the stat-based one of src/watched-file.ts unless a test injects one. */
  version?: (path: string) => string;
  /** Resolves after `ms`; a timer unless a test injects a clock. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * `use(path)` as soon as the file is usable: at once, or after it changed. While it is refused, the file is
 * stat'ed every `intervalMs` and tried again only when the stat differs: a process waiting on it takes next to no
 * CPU however long it waits, where exiting would have pm2 or the kubelet start it again and again, each start
 * taking CPU from the processes still serving.
 */
export async function whenUsable<T, E extends Error>(
  path: string,
  { use, refused, onRefused, intervalMs = 1000, version = fingerprint, sleep = sleepFor }: WhenUsableOptions<T, E>,
): Promise<T> {
  let reported: string | undefined;
  for (let tried: string | undefined; ; await sleep(intervalMs)) {
    // Taken before reading: a write during the read changes it again, and is tried at the next look.
    const now = version(path);
    if (now === tried) continue;
    tried = now;
    try {
      return use(path);
    } catch (error) {
      if (!refused(error)) throw error;
      if (error.message !== reported) onRefused(error);
      reported = error.message;
    }
  }
}
