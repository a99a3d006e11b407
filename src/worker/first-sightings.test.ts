import { describe, expect, it } from "vitest";
import { firstSightings } from "./first-sightings.ts";

const item = (id: string, offset: number) => ({ event: { id }, offset });

describe("in-batch duplicates", () => {
  it("keeps the first copy of each id, in order, and counts the dropped ones", () => {
    const { kept, dropped } = firstSightings([item("a", 1), item("b", 2), item("a", 3), item("c", 4), item("b", 5)]);
    expect(kept.map((k) => k.offset)).toEqual([1, 2, 4]);
    expect(dropped).toBe(2);
  });

  it("keeps everything when all ids differ", () => {
    expect(firstSightings([item("a", 1), item("b", 2)]).dropped).toBe(0);
  });
});
