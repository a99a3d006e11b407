import { setTimeout as pause } from "node:timers/promises";
import type { LeaseClock } from "../../src/dedup/lease-clock.ts";

/**
 * A clock that moves only when the test says so: sleeps end and timers fire inside `advance()`, so a test states
 * how long a wait was instead of timing it.
 */
export class ManualClock implements LeaseClock {
  #now = 0;
  #sleeps: { until: number; done: () => void }[] = [];
  #timers: { every: number; next: number; tick: () => void }[] = [];

  now(): number {
    return this.#now;
  }

  sleep(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#sleeps.push({ until: this.#now + ms, done: resolve });
    return promise;
  }

  every(ms: number, tick: () => void): () => void {
    const timer = { every: ms, next: this.#now + ms, tick };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** How long each sleep under way still has to run, shortest first. */
  get sleeping(): number[] {
    return this.#sleeps.map((s) => s.until - this.#now).sort((a, b) => a - b);
  }

  /** Timers still running. */
  get timers(): number {
    return this.#timers.length;
  }

  /** Moves the clock on: the sleeps that end by then end, and each timer fires once per period passed. */
  advance(ms: number): void {
    this.#now += ms;
    const due = this.#sleeps.filter((s) => s.until <= this.#now);
    this.#sleeps = this.#sleeps.filter((s) => s.until > this.#now);
    for (const sleep of due) sleep.done();
    for (const timer of [...this.#timers]) {
      while (timer.next <= this.#now && this.#timers.includes(timer)) {
        timer.next += timer.every;
        timer.tick();
      }
    }
  }

  /**
   * Lets `promise` run to its end (it may wait for I/O meanwhile), ending each sleep on this clock as soon as it
   * starts: what it resolved to, and how long it slept on this clock in all.
   */
  async settle<T>(promise: Promise<T>): Promise<{ value: T; slept: number }> {
    let settled = false;
    const done = promise.finally(() => {
      settled = true;
    });
    done.catch(() => {});
    const from = this.#now;
    while (!settled) {
      const [left] = this.sleeping;
      if (left === undefined) await pause(2);
      else this.advance(left);
      await Promise.resolve();
    }
    return { value: await done, slept: this.#now - from };
  }
}
