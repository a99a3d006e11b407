import { describe, expect, it } from "vitest";
import { ActivityWindows } from "./activity.ts";

describe("ActivityWindows", () => {
  it("lets max impressions through in a window and flags each one past it, until the next window", () => {
    const windows = new ActivityWindows({ max: 3, windowMs: 60_000, maxKeys: 100 });
    expect([0, 10, 20].map((at) => windows.count("ad", "u", at))).toEqual([false, false, false]);
    expect(windows.count("ad", "u", 59_999)).toBe(true);
    expect(windows.count("ad", "u", 59_999)).toBe(true);
    // Windows are aligned to the epoch: [0, 60,000), then [60,000, 120,000).
    expect(windows.count("ad", "u", 60_000)).toBe(false);
    expect([60_001, 60_002].map((at) => windows.count("ad", "u", at))).toEqual([false, false]);
    expect(windows.count("ad", "u", 60_003)).toBe(true);
  });

  it("counts each pair of keys on its own", () => {
    const windows = new ActivityWindows({ max: 1, windowMs: 1_000, maxKeys: 100 });
    expect(windows.count("ad-1", "u", 0)).toBe(false);
    expect(windows.count("ad-2", "u", 0)).toBe(false);
    expect(windows.count("ad-1", "v", 0)).toBe(false);
    expect(windows.count("ad-1", "u", 1)).toBe(true);
    expect(windows.count("ad-2", "u", 999)).toBe(true);
  });

  it("counts an impression that comes late in the window it belongs to, however old", () => {
    const windows = new ActivityWindows({ max: 2, windowMs: 60_000, maxKeys: 100 });
    expect([120_000, 120_001].map((at) => windows.count("ad", "u", at))).toEqual([false, false]);
    // The window before, and one long before: each its own.
    expect([60_000, 60_001].map((at) => windows.count("ad", "u", at))).toEqual([false, false]);
    expect(windows.count("ad", "u", 60_002)).toBe(true);
    expect([5_000, 5_001].map((at) => windows.count("ad", "u", at))).toEqual([false, false]);
    expect(windows.count("ad", "u", 5_002)).toBe(true);
    expect(windows.count("ad", "u", 120_002)).toBe(true);
  });

  it("keeps the newest two windows only, and at most maxKeys keys in each", () => {
    const windows = new ActivityWindows({ max: 1, windowMs: 1_000, maxKeys: 2 });
    windows.count("ad", "a", 0);
    windows.count("ad", "b", 0);
    // A third key in a full window is not counted: it passes, however often.
    expect([windows.count("ad", "c", 1), windows.count("ad", "c", 2)]).toEqual([false, false]);
    expect(windows.count("ad", "a", 3)).toBe(true);
    expect(windows.size).toBe(2);
    windows.count("ad", "a", 1_000);
    expect(windows.size).toBe(3);
    // Two windows later, both of before are gone.
    windows.count("ad", "a", 3_000);
    expect(windows.size).toBe(1);
  });
});
