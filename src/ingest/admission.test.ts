import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Admission } from "./admission.ts";

/** Records the order in which acquisitions resolve. */
function tracker() {
  const order: string[] = [];
  return { order, track: (name: string, turn: Promise<void>) => turn.then(() => order.push(name)) };
}

describe("Admission", () => {
  it("admits up to maxRequests at once and the next waiter when one is released, in arrival order", async () => {
    const admission = new Admission({ maxRequests: 2, maxBytes: 1_000, maxWaitMs: 1_000 });
    await admission.acquire(1);
    await admission.acquire(1);
    const { order, track } = tracker();
    const third = track("third", admission.acquire(1));
    const fourth = track("fourth", admission.acquire(1));
    await sleep(20);
    expect(order).toEqual([]);
    admission.release(1);
    await third;
    expect(order).toEqual(["third"]);
    admission.release(1);
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
  });

  it("holds bodies to maxBytes together, lets a larger one in alone, and never lets a later one overtake", async () => {
    const admission = new Admission({ maxRequests: 16, maxBytes: 100, maxWaitMs: 1_000 });
    await admission.acquire(60);
    const { order, track } = tracker();
    const big = track("big", admission.acquire(150));
    const small = track("small", admission.acquire(10));
    await sleep(20);
    // 10 bytes would fit beside the 60, but the 150 came first.
    expect(order).toEqual([]);
    admission.release(60);
    await big;
    await sleep(20);
    expect(order).toEqual(["big"]);
    admission.release(150);
    await small;
    expect(order).toEqual(["big", "small"]);
  });

  it("answers a 503 overloaded to a request that waited longer than maxWaitMs, and lets the next one in", async () => {
    const admission = new Admission({ maxRequests: 1, maxBytes: 1_000, maxWaitMs: 30 });
    await admission.acquire(1);
    const started = Date.now();
    await expect(admission.acquire(1)).rejects.toMatchObject({ statusCode: 503, code: "overloaded" });
    expect(Date.now() - started).toBeLessThan(500);
    admission.release(1);
    await expect(admission.acquire(1)).resolves.toBeUndefined();
  });
});
