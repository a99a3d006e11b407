import { AppError } from "../errors.ts";

interface Waiter {
  bytes: number;
  admit: () => void;
  timer: NodeJS.Timeout;
}

/** Gives a turn back: call once, however the request ended. */
export type Release = () => void;

/**
 * Lets at most `maxRequests` batch requests, holding at most `maxBytes` of bodies together, be read and
 * processed at once. The others wait, in arrival order, before their body is read, so it stays in the socket
 * (TCP backpressure) instead of the heap; past `maxWaitMs` they get a 503. A request larger than `maxBytes`
 * is let in alone. This bounds the API's memory under any number of concurrent senders and any body size.
 */
export class Admission {
  readonly #maxRequests: number;
  readonly #maxBytes: number;
  readonly #maxWaitMs: number;
  readonly #waiting: Waiter[] = [];
  #active = 0;
  #activeBytes = 0;

  constructor(limits: { maxRequests: number; maxBytes: number; maxWaitMs: number }) {
    this.#maxRequests = limits.maxRequests;
    this.#maxBytes = limits.maxBytes;
    this.#maxWaitMs = limits.maxWaitMs;
  }

  /** Waits for a turn for a body of `bytes` (its Content-Length, or the route's limit when unknown). */
  acquire(bytes: number): Promise<Release> {
    if (this.#waiting.length === 0 && this.#fits(bytes)) return Promise.resolve(this.#take(bytes));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        admit: () => {
          clearTimeout(waiter.timer);
          resolve(this.#take(bytes));
        },
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          reject(new AppError("overloaded", "too many batches in progress; retry shortly"));
          this.#admitWaiting();
        }, this.#maxWaitMs),
      };
      this.#waiting.push(waiter);
    });
  }

  #fits(bytes: number): boolean {
    if (this.#active === 0) return true;
    return this.#active < this.#maxRequests && this.#activeBytes + bytes <= this.#maxBytes;
  }

  #take(bytes: number): Release {
    this.#active++;
    this.#activeBytes += bytes;
    return () => {
      this.#active--;
      this.#activeBytes -= bytes;
      this.#admitWaiting();
    };
  }

  /** First come, first served: a large body at the head is not overtaken by smaller ones behind it. */
  #admitWaiting(): void {
    for (let head = this.#waiting[0]; head && this.#fits(head.bytes); head = this.#waiting[0]) {
      this.#waiting.shift();
      head.admit();
    }
  }
}
