import { setTimeout as sleep } from "node:timers/promises";

/**
 * The time an owner lease measures its own waits by: a monotonic clock in milliseconds, a sleep on it, and the
 * renewal timer. Valkey keeps the lease's TTL and its `until-<ms>` on its own clock; this one is only for what the
 * process waits out. Tests inject a manual one, so no test races a sleep against a TTL.
 */
export interface LeaseClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Calls `tick` every `ms` until the returned function is called; never keeps the process alive. */
  every(ms: number, tick: () => void): () => void;
}

export const systemLeaseClock: LeaseClock = {
  now: () => performance.now(),
  sleep: (ms) => sleep(ms),
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};
