import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppError } from "../errors.ts";
import { QuerySlots } from "./query-slots.ts";

const open = () => new AbortController().signal;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("QuerySlots", () => {
  it("lets `concurrency` queries run at once; the next waits and runs when one ends", async () => {
    const slots = new QuerySlots({ concurrency: 2, maxWaitMs: 1000, maxWaiting: 4 });
    const first = await slots.acquire(open());
    await slots.acquire(open());
    let third: (() => void) | undefined;
    void slots.acquire(open()).then((release) => {
      third = release;
    });
    await vi.advanceTimersByTimeAsync(500);
    expect([slots.inFlight, slots.waiting, third]).toEqual([2, 1, undefined]);
    first();
    await vi.advanceTimersByTimeAsync(0);
    expect([slots.inFlight, slots.waiting, typeof third]).toEqual([2, 0, "function"]);
  });

  it("answers 503 overloaded to a query that waited maxWaitMs, and frees its place in line", async () => {
    const slots = new QuerySlots({ concurrency: 1, maxWaitMs: 1000, maxWaiting: 4 });
    await slots.acquire(open());
    const waiting = slots.acquire(open());
    const outcome = expect(waiting).rejects.toMatchObject({ code: "overloaded", retryable: true });
    await vi.advanceTimersByTimeAsync(999);
    expect(slots.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
    expect(slots.waiting).toBe(0);
  });

  it("refuses at once beyond maxWaiting: nothing queues without bound", async () => {
    const slots = new QuerySlots({ concurrency: 1, maxWaitMs: 1000, maxWaiting: 2 });
    await slots.acquire(open());
    const queued = [slots.acquire(open()), slots.acquire(open())].map((q) =>
      expect(q).rejects.toMatchObject({ code: "overloaded" }),
    );
    await expect(slots.acquire(open())).rejects.toBeInstanceOf(AppError);
    expect(slots.waiting).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(queued);
  });

  it("drops a waiter whose client went away, and refuses one already gone", async () => {
    const slots = new QuerySlots({ concurrency: 1, maxWaitMs: 1000, maxWaiting: 4 });
    const release = await slots.acquire(open());
    const client = new AbortController();
    const waiting = slots.acquire(client.signal);
    const behind = slots.acquire(open());
    client.abort();
    await expect(waiting).rejects.toMatchObject({ code: "sender_gone" });
    expect(slots.waiting).toBe(1);
    release();
    await expect(behind).resolves.toBeTypeOf("function");
    await expect(slots.acquire(client.signal)).rejects.toMatchObject({ code: "sender_gone" });
  });

  it("counts a release once, however often it is called", async () => {
    const slots = new QuerySlots({ concurrency: 1, maxWaitMs: 1000, maxWaiting: 4 });
    const release = await slots.acquire(open());
    release();
    release();
    expect(slots.inFlight).toBe(0);
    await slots.acquire(open());
    expect(slots.inFlight).toBe(1);
  });
});
