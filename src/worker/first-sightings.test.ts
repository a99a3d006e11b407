import { describe, expect, it } from "vitest";
import { firstSightings } from "./first-sightings.ts";

const item = (id: string, offset: number, kind?: "impression" | "viewable" | "click") => ({
  event: kind === undefined ? { id } : { id, kind },
  offset,
});

describe("in-batch duplicates", () => {
  it("keeps the first copy of each id, in order, and counts the dropped ones", () => {
    const { kept, dropped } = firstSightings([item("a", 1), item("b", 2), item("a", 3), item("c", 4), item("b", 5)]);
    expect(kept.map((k) => k.offset)).toEqual([1, 2, 4]);
    expect(dropped).toBe(2);
  });

  it("keys by kind and id: an impression and its viewable are both kept, a second viewable is dropped", () => {
    const { kept, dropped } = firstSightings([
      item("a", 1),
      item("a", 2, "viewable"),
      item("a", 3, "impression"),
      item("a", 4, "viewable"),
      item("a", 5, "click"),
    ]);
    expect(kept.map((k) => k.offset)).toEqual([1, 2, 5]);
    expect(dropped).toBe(2);
  });

  it("keeps everything when all ids differ", () => {
    expect(firstSightings([item("a", 1), item("b", 2)]).dropped).toBe(0);
  });
});
