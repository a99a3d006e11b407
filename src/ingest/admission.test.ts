import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Admission, type Release } from "./admission.ts";

/** Records the order in which turns are granted; each tracked turn resolves to its release. */
function tracker() {
  const order: string[] = [];
  const track = (name: string, turn: Promise<Release>) =>
    turn.then((release) => {
      order.push(name);
      return release;
    });
  return { order, track };
}

describe("Admission", () => {
  it("admits up to maxRequests at once and the next waiter when one is released, in arrival order", async () => {
    const admission = new Admission({ maxRequests: 2, maxBytes: 1_000, maxWaitMs: 1_000 });
    const first = await admission.acquire(1);
    const second = await admission.acquire(1);
    const { order, track } = tracker();
    const third = track("third", admission.acquire(1));
    const fourth = track("fourth", admission.acquire(1));
    await sleep(20);
    expect(order).toEqual([]);
    first();
    await third;
    expect(order).toEqual(["third"]);
    second();
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
  });

  it("holds bodies to maxBytes together, lets a larger one in alone, and never lets a later one overtake", async () => {
    const admission = new Admission({ maxRequests: 16, maxBytes: 100, maxWaitMs: 1_000 });
    const held = await admission.acquire(60);
    const { order, track } = tracker();
    const big = track("big", admission.acquire(150));
    const small = track("small", admission.acquire(10));
    await sleep(20);
    // 10 bytes would fit beside the 60, but the 150 came first.
    expect(order).toEqual([]);
    held();
    const releaseBig = await big;
    await sleep(20);
    expect(order).toEqual(["big"]);
    releaseBig();
    await small;
    expect(order).toEqual(["big", "small"]);
  });

  it("answers a 503 overloaded to a request that waited longer than maxWaitMs, and lets the next one in", async () => {
    const admission = new Admission({ maxRequests: 1, maxBytes: 1_000, maxWaitMs: 30 });
    const held = await admission.acquire(1);
    const started = Date.now();
    await expect(admission.acquire(1)).rejects.toMatchObject({ code: "overloaded", retryable: true });
    expect(Date.now() - started).toBeLessThan(500);
    held();
    await expect(admission.acquire(1)).resolves.toBeTypeOf("function");
  });
});
