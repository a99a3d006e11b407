/** A bucket holds this many seconds of a key's rate: the burst a sender may send at once. */
export const BURST_SECONDS = 2;

/**
 * A bucket's size: BURST_SECONDS of its rate, and at least one, so that a process's share of a slow rate
 * (1/s over 4 processes is 0.25/s each) still lets a single event or request in now and then.
 */
export function bucketCapacity(ratePerSecond: number): number {
  return Math.max(1, ratePerSecond * BURST_SECONDS);
}

export interface RateDecision {
  allowed: boolean;
  /** Refused for good: the take is larger than the whole bucket, so no wait lets it in (a smaller one would). */
  oversize: boolean;
  /** The bucket's capacity in whole units: also the largest take it ever allows. */
  limit: number;
  /** Whole units left in the bucket after this take (or now, if refused). */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** When refused (not oversize): seconds until this take would be allowed (at least 1); else 0. */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  rate: number;
  updatedMs: number;
}

/**
 * Token buckets, one per key (or client), refilled at its rate up to bucketCapacity(rate); rates may be
 * fractional (a process's share of a key's rate). A take is checked first (`check`, which changes nothing) and
 * spent after (`spend`), so a request charged to several buckets (its key's and its client IP's) is checked
 * against all of them before any is spent: one that refuses leaves the others untouched. A take larger than a
 * bucket's capacity is never allowed. Time is passed in. Memory is bounded: full buckets carry no state and are
 * swept, and past `maxBuckets` the least recently used one is dropped (its sender starts again with a full bucket).
 */
export class RateLimiter {
  readonly #maxBuckets: number;
  /** In order of last use: the first is the least recently used. */
  readonly #buckets = new Map<string, Bucket>();
  #spendsSinceSweep = 0;

  constructor({ maxBuckets = 100_000 }: { maxBuckets?: number } = {}) {
    this.#maxBuckets = maxBuckets;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** What taking `amount` from the bucket at `nowMs` would be answered; changes nothing. */
  check(bucketKey: string, ratePerSecond: number, amount: number, nowMs: number): RateDecision {
    const capacity = bucketCapacity(ratePerSecond);
    const bucket = this.#buckets.get(bucketKey);
    const tokens = bucket ? refilled(bucket, ratePerSecond, nowMs) : capacity;
    const oversize = amount > capacity;
    const allowed = !oversize && tokens >= amount;
    const left = allowed ? tokens - amount : tokens;
    return {
      allowed,
      oversize,
      limit: Math.floor(capacity),
      remaining: Math.floor(left),
      resetSeconds: Math.ceil((capacity - left) / ratePerSecond),
      retryAfterSeconds: allowed || oversize ? 0 : Math.max(1, Math.ceil((amount - tokens) / ratePerSecond)),
    };
  }

  /** Takes `amount` from the bucket: call it once `check` allowed the take for every bucket it is charged to. */
  spend(bucketKey: string, ratePerSecond: number, amount: number, nowMs: number): void {
    const bucket = this.#buckets.get(bucketKey);
    const tokens = bucket ? refilled(bucket, ratePerSecond, nowMs) : bucketCapacity(ratePerSecond);
    this.#buckets.delete(bucketKey);
    this.#buckets.set(bucketKey, {
      tokens: tokens - amount,
      rate: ratePerSecond,
      updatedMs: Math.max(nowMs, bucket?.updatedMs ?? 0),
    });
    if (this.#buckets.size > this.#maxBuckets) this.#buckets.delete(this.#buckets.keys().next().value as string);
    // Sweeping after as many spends as there are buckets keeps its cost constant per spend.
    if (++this.#spendsSinceSweep >= this.#buckets.size) this.#sweep(nowMs);
  }

  #sweep(nowMs: number): void {
    this.#spendsSinceSweep = 0;
    for (const [key, bucket] of this.#buckets) {
      if (refilled(bucket, bucket.rate, nowMs) >= bucketCapacity(bucket.rate)) this.#buckets.delete(key);
    }
  }
}

function refilled(bucket: Bucket, rate: number, nowMs: number): number {
  const elapsedSeconds = Math.max(0, nowMs - bucket.updatedMs) / 1000;
  return Math.min(bucketCapacity(rate), bucket.tokens + elapsedSeconds * rate);
}
