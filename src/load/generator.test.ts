import { describe, expect, it } from "vitest";
import { impressionSchema } from "../impression/schema.ts";
import { createGenerator, type EventKind, LATE_MAX_MS, LATE_MIN_MS } from "./generator.ts";
import { seededRng, uuid, zipf } from "./random.ts";

const NOW = 1_800_000_000_000;
const schema = impressionSchema({ maxFutureSkewMs: 300_000, retentionDays: 30, now: () => NOW });

function draw(n: number, shares: { duplicates?: number; late?: number; invalid?: number }, seed = 42) {
  const next = createGenerator({
    ads: 10,
    users: 1000,
    duplicates: 0,
    late: 0,
    invalid: 0,
    ...shares,
    rng: seededRng(seed),
    now: () => NOW,
  });
  return Array.from({ length: n }, next);
}
const share = (events: { kind: EventKind }[], kind: EventKind) =>
  events.filter((e) => e.kind === kind).length / events.length;

describe("the impression generator", () => {
  it("makes valid impressions with UUID ids, ad-N and user-N, at now", () => {
    for (const { kind, fields } of draw(1000, {})) {
      expect(kind).toBe("new");
      expect(schema.safeParse(fields).success).toBe(true);
      expect(fields.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(fields.adId).toMatch(/^ad-([1-9]|10)$/);
      expect(fields.userId).toMatch(/^user-\d+$/);
      expect(fields.ts).toBe(NOW);
    }
  });

  it("is reproducible with a seed", () => {
    expect(draw(50, { duplicates: 0.2, invalid: 0.1 }, 7)).toEqual(draw(50, { duplicates: 0.2, invalid: 0.1 }, 7));
    expect(uuid(seededRng(1))).not.toBe(uuid(seededRng(2)));
  });

  it("gives the asked shares of duplicates, late and invalid events", () => {
    const events = draw(20_000, { duplicates: 0.1, late: 0.2, invalid: 0.05 });
    expect(share(events, "invalid")).toBeCloseTo(0.05, 2);
    expect(share(events, "duplicate")).toBeCloseTo(0.1, 2);
    // late is a share of the new events (85% of all)
    expect(share(events, "late")).toBeCloseTo(0.2 * 0.85, 1);
  });

  it("breaks every invalid event and keeps every other valid", () => {
    for (const { kind, fields } of draw(5000, { duplicates: 0.1, late: 0.3, invalid: 0.3 })) {
      expect(schema.safeParse(fields).success).toBe(kind !== "invalid");
    }
  });

  it("resends an earlier valid event unchanged as a duplicate, some soon and some much later", () => {
    const events = draw(20_000, { duplicates: 0.1 });
    const firstSeen = new Map<unknown, number>();
    const gaps: number[] = [];
    events.forEach((e, i) => {
      if (e.kind !== "duplicate") {
        expect(firstSeen.has(e.fields.id)).toBe(false);
        firstSeen.set(e.fields.id, i);
        return;
      }
      const first = firstSeen.get(e.fields.id);
      expect(first).toBeDefined();
      expect(e.fields).toEqual(events[first ?? 0]?.fields);
      gaps.push(i - (first ?? 0));
    });
    expect(gaps.filter((g) => g <= 12).length / gaps.length).toBeGreaterThan(0.4);
    expect(gaps.filter((g) => g > 1000).length / gaps.length).toBeGreaterThan(0.2);
  });

  it("puts a late event minutes in the past", () => {
    const late = draw(2000, { late: 0.5 }).filter((e) => e.kind === "late");
    expect(late.length).toBeGreaterThan(800);
    for (const e of late) {
      expect(NOW - (e.fields.ts as number)).toBeGreaterThanOrEqual(LATE_MIN_MS);
      expect(NOW - (e.fields.ts as number)).toBeLessThanOrEqual(LATE_MAX_MS);
    }
  });

  it("draws ads Zipf-style: ad 1 about twice as often as ad 2, ten times as often as ad 10", () => {
    const rank = zipf(10);
    const rng = seededRng(3);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[rank(rng)]++;
    expect(counts[0] / counts[1]).toBeCloseTo(2, 0);
    expect(counts[0] / counts[9]).toBeGreaterThan(8);
    expect(counts[0] / counts[9]).toBeLessThan(12);
    expect(counts[0] / 100_000).toBeCloseTo(1 / 2.929, 1);
  });
});
