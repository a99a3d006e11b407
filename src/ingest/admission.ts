import { HttpError } from "../api/errors.ts";

interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Lets at most `limit` batch requests be read and processed at once. The others wait before their body is
 * read, so it stays in the socket (TCP backpressure) instead of the heap; past `maxWaitMs` they get a 503.
 * This bounds the API's memory under any number of concurrent senders.
 */
export class Admission {
  readonly #limit: number;
  readonly #maxWaitMs: number;
  readonly #waiting: Waiter[] = [];
  #active = 0;

  constructor(limit: number, maxWaitMs: number) {
    this.#limit = limit;
    this.#maxWaitMs = maxWaitMs;
  }

  acquire(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(waiter.timer);
          this.#active++;
          resolve();
        },
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          reject(new HttpError(503, "overloaded", "too many batches in progress; retry shortly"));
        }, this.#maxWaitMs),
      };
      this.#waiting.push(waiter);
    });
  }

  release(): void {
    this.#active--;
    this.#waiting.shift()?.admit();
  }
}
