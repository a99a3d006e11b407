/** A bucket holds this many seconds of a key's rate: the burst a sender may send at once. */
export const BURST_SECONDS = 2;

export interface RateDecision {
  allowed: boolean;
  /** The bucket's capacity (events). */
  limit: number;
  /** Whole events left in the bucket after this take. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** When refused: seconds until this take would be allowed (at least 1); 0 when allowed. */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  rate: number;
  updatedMs: number;
}

/**
 * Token buckets, one per key, refilled at the key's rate up to BURST_SECONDS of it. A take needs
 * min(events, capacity) tokens and then spends all its events, going negative if need be: a batch larger
 * than the burst gets in when the bucket is full, and the debt holds later takes back, so the average holds.
 * Time is passed in. Memory is bounded: full buckets carry no state and are swept, and past `maxBuckets`
 * the least recently used one is dropped (its sender starts again with a full bucket).
 */
export class RateLimiter {
  readonly #maxBuckets: number;
  /** In order of last use: the first is the least recently used. */
  readonly #buckets = new Map<string, Bucket>();
  #takesSinceSweep = 0;

  constructor({ maxBuckets = 100_000 }: { maxBuckets?: number } = {}) {
    this.#maxBuckets = maxBuckets;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(bucketKey: string, ratePerSecond: number, events: number, nowMs: number): RateDecision {
    const capacity = ratePerSecond * BURST_SECONDS;
    const bucket = this.#buckets.get(bucketKey);
    const tokens = bucket ? refilled(bucket, ratePerSecond, nowMs) : capacity;
    const needed = Math.min(events, capacity);
    const allowed = tokens >= needed;
    const left = allowed ? tokens - events : tokens;

    this.#buckets.delete(bucketKey);
    this.#buckets.set(bucketKey, {
      tokens: left,
      rate: ratePerSecond,
      updatedMs: Math.max(nowMs, bucket?.updatedMs ?? 0),
    });
    if (this.#buckets.size > this.#maxBuckets) this.#buckets.delete(this.#buckets.keys().next().value as string);
    // Sweeping after as many takes as there are buckets keeps its cost constant per take.
    if (++this.#takesSinceSweep >= this.#buckets.size) this.#sweep(nowMs);

    return {
      allowed,
      limit: capacity,
      remaining: Math.max(0, Math.floor(left)),
      resetSeconds: Math.ceil((capacity - left) / ratePerSecond),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((needed - left) / ratePerSecond)),
    };
  }

  #sweep(nowMs: number): void {
    this.#takesSinceSweep = 0;
    for (const [key, bucket] of this.#buckets) {
      if (refilled(bucket, bucket.rate, nowMs) >= bucket.rate * BURST_SECONDS) this.#buckets.delete(key);
    }
  }
}

function refilled(bucket: Bucket, rate: number, nowMs: number): number {
  const elapsedSeconds = Math.max(0, nowMs - bucket.updatedMs) / 1000;
  return Math.min(rate * BURST_SECONDS, bucket.tokens + elapsedSeconds * rate);
}
