import { describe, expect, it } from "vitest";
import { BURST_SECONDS, bucketCapacity, RateLimiter } from "./rate-limiter.ts";

/** check, then spend if allowed: what a request charged to one bucket does. */
function take(limiter: RateLimiter, key: string, rate: number, amount: number, nowMs: number) {
  const decision = limiter.check(key, rate, amount, nowMs);
  if (decision.allowed) limiter.spend(key, rate, amount, nowMs);
  return decision;
}

describe("RateLimiter", () => {
  it("lets a burst of BURST_SECONDS × rate through at once, then refuses until it refills", () => {
    const limiter = new RateLimiter();
    expect(take(limiter, "k", 10, 10 * BURST_SECONDS, 0)).toEqual({
      allowed: true,
      oversize: false,
      limit: 20,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 0,
    });
    expect(take(limiter, "k", 10, 5, 0)).toEqual({
      allowed: false,
      oversize: false,
      limit: 20,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
    });
    expect(take(limiter, "k", 10, 5, 500)).toMatchObject({ allowed: true, remaining: 0 });
    expect(take(limiter, "k", 10, 1, 1_500)).toMatchObject({ allowed: true, remaining: 9, resetSeconds: 2 });
  });

  it("keeps a separate bucket per key", () => {
    const limiter = new RateLimiter();
    take(limiter, "a", 1, 2, 0);
    expect(take(limiter, "a", 1, 1, 0).allowed).toBe(false);
    expect(take(limiter, "b", 1, 1, 0)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it("check changes nothing: a bucket refused elsewhere is not spent", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 10; i++) expect(limiter.check("k", 1, 2, 0)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.size).toBe(0);
    limiter.spend("k", 1, 2, 0);
    expect(limiter.check("k", 1, 1, 0)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
  });

  it("refuses for good a batch larger than the whole bucket, even a full one, and says the largest it takes", () => {
    const limiter = new RateLimiter();
    expect(limiter.check("k", 10, 10_000, 0)).toEqual({
      allowed: false,
      oversize: true,
      limit: 20,
      remaining: 20,
      resetSeconds: 0,
      retryAfterSeconds: 0,
    });
    expect(limiter.check("k", 10, 21, 0)).toMatchObject({ allowed: false, oversize: true });
    expect(take(limiter, "k", 10, 20, 0)).toMatchObject({ allowed: true, oversize: false, remaining: 0 });
  });

  it("takes fractional rates as they are: a share of 0.25/s lets one in every 4 s, not one a second", () => {
    const limiter = new RateLimiter();
    // 1/s over 4 processes: the bucket holds one event (at least one, though 2 s of 0.25/s is 0.5).
    expect(bucketCapacity(0.25)).toBe(1);
    expect(take(limiter, "k", 0.25, 1, 0)).toMatchObject({ allowed: true, limit: 1, remaining: 0, resetSeconds: 4 });
    expect(take(limiter, "k", 0.25, 1, 1_000)).toMatchObject({ allowed: false, retryAfterSeconds: 3 });
    expect(take(limiter, "k", 0.25, 1, 3_900).allowed).toBe(false);
    expect(take(limiter, "k", 0.25, 1, 4_000).allowed).toBe(true);
    // 500/s over 3 processes: 166.67/s, a bucket of 333 whole events.
    expect(limiter.check("j", 500 / 3, 333, 0)).toMatchObject({ allowed: true, limit: 333, remaining: 0 });
    expect(limiter.check("j", 500 / 3, 334, 0)).toMatchObject({ allowed: false, oversize: true, limit: 333 });
  });

  it("says how long to wait for the events a refused take needs", () => {
    const limiter = new RateLimiter();
    take(limiter, "k", 1, 2, 0);
    expect(take(limiter, "k", 1, 2, 0)).toMatchObject({ allowed: false, retryAfterSeconds: 2 });
    expect(take(limiter, "k", 1, 2, 1_000)).toMatchObject({ allowed: false, remaining: 1, retryAfterSeconds: 1 });
    expect(take(limiter, "k", 1, 2, 2_000).allowed).toBe(true);
  });

  it("holds at most maxBuckets buckets: the least recently used one starts again full", () => {
    const limiter = new RateLimiter({ maxBuckets: 2 });
    take(limiter, "a", 1, 2, 0);
    take(limiter, "b", 1, 1, 0);
    take(limiter, "c", 1, 1, 0);
    expect(limiter.size).toBe(2);
    expect(take(limiter, "a", 1, 1, 0).allowed).toBe(true);
    for (let i = 0; i < 1_000; i++) take(limiter, `k${i}`, 1, 1, 0);
    expect(limiter.size).toBe(2);
  });

  it("drops buckets that are full again", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 100; i++) take(limiter, `k${i}`, 10, 5, 0);
    expect(limiter.size).toBe(100);
    // Half a second refills 5 events: every bucket is full again and carries nothing worth keeping.
    for (let i = 0; i < 100; i++) take(limiter, "busy", 10, 1, 500);
    expect(limiter.size).toBeLessThanOrEqual(1);
  });
});
