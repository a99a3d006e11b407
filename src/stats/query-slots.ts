import { AppError } from "../errors.ts";

/** Gives a slot back: call once, however the query ended. */
export type Release = () => void;

interface Waiter {
  admit: () => void;
  leave: () => void;
}

/**
 * The ClickHouse queries one process may have in flight (`concurrency`). Others wait in arrival order, at most
 * `maxWaitMs` and at most `maxWaiting` of them; past either they get a 503 `overloaded`, so a flood of queries
 * queues nowhere without bound: not here, and not in ClickHouse. A waiter whose client went away (`signal`)
 * leaves the line at once.
 */
export class QuerySlots {
  readonly #concurrency: number;
  readonly #maxWaitMs: number;
  readonly #maxWaiting: number;
  readonly #waiting: Waiter[] = [];
  #inFlight = 0;

  constructor(limits: { concurrency: number; maxWaitMs: number; maxWaiting: number }) {
    this.#concurrency = limits.concurrency;
    this.#maxWaitMs = limits.maxWaitMs;
    this.#maxWaiting = limits.maxWaiting;
  }

  /** Queries holding a slot now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Queries waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  acquire(signal: AbortSignal): Promise<Release> {
    if (signal.aborted) return Promise.reject(gone());
    if (this.#inFlight < this.#concurrency && this.#waiting.length === 0) return Promise.resolve(this.#take());
    if (this.#waiting.length >= this.#maxWaiting) return Promise.reject(this.#overloaded());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        waiter.leave();
        reject(gone());
      };
      const timer = setTimeout(() => {
        waiter.leave();
        reject(this.#overloaded());
      }, this.#maxWaitMs);
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          resolve(this.#take());
        },
        leave: () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          const at = this.#waiting.indexOf(waiter);
          if (at >= 0) this.#waiting.splice(at, 1);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #take(): Release {
    this.#inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      this.#waiting.shift()?.admit();
    };
  }

  #overloaded(): AppError {
    return new AppError(
      "overloaded",
      `${this.#concurrency} queries are running in this process and ${this.#waiting.length} waiting; retry shortly`,
    );
  }
}

function gone(): AppError {
  return new AppError("sender_gone", "the client closed the connection; its query was not run");
}
