import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { SettledSighting } from "./defer-busy-partitions.ts";
import { flagExpiredClaims, trustedAgeMs } from "./expired-claims.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const DAY_MS = 86_400_000;

const settled = (id: string, outcome: SettledSighting["outcome"], ageMs: number): SettledSighting => ({
  event: makeImpression("expired", { id }),
  position: { topic: "t", partition: 0, offset: 0n },
  acceptedAt: NOW - ageMs,
  outcome,
});
const outcomes = (checked: { event: { id: string }; outcome: string }[]) =>
  Object.fromEntries(checked.map((s) => [s.event.id, s.outcome]));

describe("distrusting new claims of messages older than a claim lives", () => {
  it("trusts a message younger than the window less a minute (the clocks' margin), and no older one", () => {
    const checked = flagExpiredClaims(
      [
        settled("fresh", "new", 1_000),
        settled("just-trusted", "new", DAY_MS - 60_001),
        settled("at-margin", "new", DAY_MS - 60_000),
        settled("past-window", "new", DAY_MS + 1),
        settled("month-old", "new", 29 * DAY_MS),
      ],
      { now: NOW, windowMs: DAY_MS },
    );
    expect(outcomes(checked)).toEqual({
      fresh: "new",
      "just-trusted": "new",
      "at-margin": "expired",
      "past-window": "expired",
      "month-old": "expired",
    });
  });

  it("leaves replays and duplicates as they are, whatever their age", () => {
    const checked = flagExpiredClaims(
      [settled("replay", "replay", 2 * DAY_MS), settled("duplicate", "duplicate", 2 * DAY_MS)],
      { now: NOW, windowMs: DAY_MS },
    );
    expect(outcomes(checked)).toEqual({ replay: "replay", duplicate: "duplicate" });
  });

  it("keeps a tenth of a window shorter than ten minutes as the margin", () => {
    expect(trustedAgeMs(DAY_MS)).toBe(DAY_MS - 60_000);
    expect(trustedAgeMs(2_000)).toBe(1_800);
    const checked = flagExpiredClaims([settled("a", "new", 1_799), settled("b", "new", 1_800)], {
      now: NOW,
      windowMs: 2_000,
    });
    expect(outcomes(checked)).toEqual({ a: "new", b: "expired" });
  });
});
