import { describe, expect, it } from "vitest";
import { ActivityWindows } from "./activity.ts";

describe("ActivityWindows", () => {
  it("lets max impressions through in a window and flags each one past it, until the next window", () => {
    const windows = new ActivityWindows({ max: 3, windowMs: 60_000, maxKeys: 100 });
    expect([0, 10, 20].map((at) => windows.count("ad\nu", at))).toEqual([false, false, false]);
    expect(windows.count("ad\nu", 59_999)).toBe(true);
    expect(windows.count("ad\nu", 59_999)).toBe(true);
    // Windows are aligned to the epoch: [0, 60,000), then [60,000, 120,000).
    expect(windows.count("ad\nu", 60_000)).toBe(false);
    expect([60_001, 60_002].map((at) => windows.count("ad\nu", at))).toEqual([false, false]);
    expect(windows.count("ad\nu", 60_003)).toBe(true);
  });

  it("counts each key on its own", () => {
    const windows = new ActivityWindows({ max: 1, windowMs: 1_000, maxKeys: 100 });
    expect(windows.count("a", 0)).toBe(false);
    expect(windows.count("b", 0)).toBe(false);
    expect(windows.count("a", 1)).toBe(true);
    expect(windows.count("b", 999)).toBe(true);
  });

  it("counts an impression that comes late in the window it belongs to", () => {
    const windows = new ActivityWindows({ max: 2, windowMs: 60_000, maxKeys: 100 });
    expect([120_000, 120_001].map((at) => windows.count("k", at))).toEqual([false, false]);
    // Two from an earlier window, arriving now: they are that window's.
    expect([5_000, 5_001].map((at) => windows.count("k", at))).toEqual([false, false]);
    expect(windows.count("k", 5_002)).toBe(true);
    expect(windows.count("k", 120_002)).toBe(true);
  });

  it("forgets windows older than the last two, and past maxKeys the ones counted first", () => {
    const windows = new ActivityWindows({ max: 1, windowMs: 1_000, maxKeys: 3 });
    for (const [key, at] of [
      ["a", 0],
      ["b", 10],
      ["c", 20],
    ] as const)
      windows.count(key, at);
    expect(windows.size).toBe(3);
    windows.count("d", 30);
    // "a" went to make room: its next impression opens a new window.
    expect(windows.size).toBe(3);
    expect(windows.count("a", 40)).toBe(false);
    expect(windows.count("d", 40)).toBe(true);
    // At 2,000 (window 2) the windows of window 0 are too old: a new key's window drops them all.
    windows.count("e", 2_000);
    expect(windows.size).toBe(1);
  });
});
