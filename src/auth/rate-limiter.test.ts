import { describe, expect, it } from "vitest";
import { BURST_SECONDS, RateLimiter } from "./rate-limiter.ts";

describe("RateLimiter", () => {
  it("lets a burst of BURST_SECONDS × rate through at once, then refuses until it refills", () => {
    const limiter = new RateLimiter();
    expect(limiter.take("k", 10, 10 * BURST_SECONDS, 0)).toEqual({
      allowed: true,
      limit: 20,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 0,
    });
    expect(limiter.take("k", 10, 5, 0)).toEqual({
      allowed: false,
      limit: 20,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
    });
    expect(limiter.take("k", 10, 5, 500)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.take("k", 10, 1, 1_500)).toMatchObject({ allowed: true, remaining: 9, resetSeconds: 2 });
  });

  it("keeps a separate bucket per key", () => {
    const limiter = new RateLimiter();
    limiter.take("a", 1, 2, 0);
    expect(limiter.take("a", 1, 1, 0).allowed).toBe(false);
    expect(limiter.take("b", 1, 1, 0)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it("lets a batch larger than the burst in when the bucket is full, and holds later ones until the debt is repaid", () => {
    const limiter = new RateLimiter();
    expect(limiter.take("k", 10, 100, 0)).toMatchObject({ allowed: true, remaining: 0, resetSeconds: 10 });
    // 80 events of debt: 5 s later there are -30 tokens, and one event needs 3.1 s more.
    expect(limiter.take("k", 10, 1, 5_000)).toMatchObject({ allowed: false, retryAfterSeconds: 4, resetSeconds: 5 });
    expect(limiter.take("k", 10, 1, 8_000).allowed).toBe(false);
    expect(limiter.take("k", 10, 1, 8_100).allowed).toBe(true);
  });

  it("says how long to wait for the events a refused take needs, at most a full bucket", () => {
    const limiter = new RateLimiter();
    limiter.take("k", 1, 2, 0);
    expect(limiter.take("k", 1, 50, 0)).toMatchObject({ allowed: false, retryAfterSeconds: 2 });
    expect(limiter.take("k", 1, 50, 1_000)).toMatchObject({ allowed: false, remaining: 1, retryAfterSeconds: 1 });
    expect(limiter.take("k", 1, 50, 2_000).allowed).toBe(true);
  });

  it("holds at most maxBuckets buckets: the least recently used one starts again full", () => {
    const limiter = new RateLimiter({ maxBuckets: 2 });
    limiter.take("a", 1, 2, 0);
    limiter.take("b", 1, 1, 0);
    limiter.take("c", 1, 1, 0);
    expect(limiter.size).toBe(2);
    expect(limiter.take("a", 1, 1, 0).allowed).toBe(true);
    for (let i = 0; i < 1_000; i++) limiter.take(`k${i}`, 1, 1, 0);
    expect(limiter.size).toBe(2);
  });

  it("drops buckets that are full again", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`, 10, 5, 0);
    expect(limiter.size).toBe(100);
    // Half a second refills 5 events: every bucket is full again and carries nothing worth keeping.
    for (let i = 0; i < 100; i++) limiter.take("busy", 10, 1, 500);
    expect(limiter.size).toBeLessThanOrEqual(1);
  });
});
