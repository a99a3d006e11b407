import { describe, expect, it } from "vitest";
import { RateSchedule } from "./rate.ts";

/** Senders on a fake clock: each sends when its wait is over. */
function simulate(rate: number, events: number, ms: number, busyMs = 0) {
  let t = 0;
  const schedule = new RateSchedule(rate, () => t, 100);
  const sentAt: number[] = [];
  let ready = 0;
  while (ready < ms) {
    t = ready;
    const wait = schedule.reserve(events);
    sentAt.push(t + wait);
    ready = t + wait + busyMs;
  }
  return sentAt.filter((at) => at < ms).length * events;
}

describe("the rate schedule", () => {
  it("spaces single events 1000/rate ms apart from the first, which goes at once", () => {
    let t = 5000;
    const schedule = new RateSchedule(100, () => t);
    expect([schedule.reserve(), schedule.reserve(), schedule.reserve()]).toEqual([0, 10, 20]);
    t += 15;
    expect(schedule.reserve()).toBe(15);
  });

  it("holds the average rate over a second, for events and for batches", () => {
    expect(simulate(200, 1, 1000)).toBe(200);
    expect(simulate(1000, 100, 3000)).toBe(3000);
    expect(simulate(50, 1, 10_000, 5)).toBe(500);
  });

  it("lets a schedule that fell behind catch up by at most the burst", () => {
    let t = 0;
    const schedule = new RateSchedule(100, () => t, 100);
    t = 10_000; // idle for 10 s: no 1000 events owed, only 100 ms' worth
    const waits = Array.from({ length: 20 }, () => schedule.reserve());
    expect(waits.filter((w) => w === 0).length).toBe(11);
    expect(waits.at(-1)).toBe(90);
  });
});
