import { setTimeout as sleep } from "node:timers/promises";

/** One impression as the load sends it; a copy is the same object sent again. */
interface LoadEvent {
  id: string;
  ts: number;
  userId: string;
  adId: string;
}

/** One HTTP answer the load got: when its request was sent, how long the answer took, and its status. */
export interface Answer {
  sentAt: number;
  ms: number;
  /** 0: no answer (the request timed out or its connection failed). */
  status: number;
}

export interface PacedLoadOptions {
  /** A batch is sent every intervalMs, whatever the batches before it are doing. */
  intervalMs: number;
  batchSize: number;
  /** Share of each batch's events that are copies of recent events. */
  duplicateRate: number;
  /** A sender gives up waiting for an answer after this, and sends the batch again. */
  requestTimeoutMs: number;
}

/** How many recent events copies are drawn from: the last second or two of sending. */
const RECENT = 500;
const RETRY_DELAY_MS = 200;

/**
 * A steady paced load on `POST /events`: every intervalMs a batch of new events, some of them copies of recent
 * ones, sent until it gets a 2xx (a 503 or no answer: sent again, unchanged, after a short delay). It records which
 * ids got a 2xx and every answer; an answer that is neither 202 nor 503 fails it.
 */
export class PacedLoad {
  readonly #url: string;
  readonly #options: PacedLoadOptions;
  readonly #run = Date.now().toString(36);
  readonly #recent: LoadEvent[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  /** Distinct ids some 2xx acknowledged. */
  readonly accepted = new Set<string>();
  readonly answers: Answer[] = [];

  constructor(apiUrl: string, options: PacedLoadOptions) {
    this.#url = `${apiUrl}/events`;
    this.#options = options;
  }

  start(): void {
    this.#timer = setInterval(() => {
      const sending = this.#sendUntilAccepted(this.#batch());
      this.#inFlight.add(sending);
      void sending.finally(() => this.#inFlight.delete(sending));
    }, this.#options.intervalMs);
  }

  /** Sends no new batch, waits until every batch sent got its 2xx; throws what went wrong, if anything did. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    this.check();
  }

  /** Stops sending, retries included, without waiting for any 2xx (the test is over). */
  abort(): void {
    clearInterval(this.#timer);
    this.#failure ??= new Error("the load was aborted");
  }

  /** Throws if an answer was neither 202 nor 503. */
  check(): void {
    if (this.#failure) throw this.#failure;
  }

  #batch(): LoadEvent[] {
    const batch: LoadEvent[] = [];
    for (let i = 0; i < this.#options.batchSize; i++) {
      const copy = Math.random() < this.#options.duplicateRate && this.#recent.length > 0;
      if (copy) {
        batch.push(this.#recent[Math.floor(Math.random() * this.#recent.length)] as LoadEvent);
        continue;
      }
      const n = this.#next++;
      const event = { id: `nf-${this.#run}-${n}`, ts: Date.now(), userId: `u${n % 700}`, adId: `ad${n % 13}` };
      batch.push(event);
      this.#recent.push(event);
      if (this.#recent.length > RECENT) this.#recent.shift();
    }
    return batch;
  }

  async #sendUntilAccepted(batch: LoadEvent[]): Promise<void> {
    const body = JSON.stringify(batch);
    while (this.#failure === undefined) {
      const sentAt = Date.now();
      const status = await fetch(this.#url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
      }).then(
        async (response) => {
          const answer = (await response.json()) as { accepted?: number };
          if (response.status === 202 && answer.accepted !== batch.length) {
            this.#failure = new Error(`POST /events accepted ${answer.accepted} of ${batch.length} valid events`);
          }
          return response.status;
        },
        () => 0,
      );
      this.answers.push({ sentAt, ms: Date.now() - sentAt, status });
      if (status === 202) {
        for (const event of batch) this.accepted.add(event.id);
        return;
      }
      if (status !== 503 && status !== 0) this.#failure = new Error(`POST /events answered ${status}`);
      await sleep(RETRY_DELAY_MS);
    }
  }
}
