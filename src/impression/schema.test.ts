import { describe, expect, it } from "vitest";
import { encodeImpression } from "./codec.ts";
import { impressionSchema, issueDetails } from "./schema.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const schema = impressionSchema({ maxFutureSkewMs: 60_000, retentionDays: 30, now: () => NOW });
const valid = { id: "5f1c2f8e-3c1a-4b7e-9f4e-2d7c1a9b0e11", ts: NOW - 1000, userId: "user_42", adId: "ad:7" };

function problems(input: unknown) {
  const result = schema.safeParse(input);
  return result.success ? [] : issueDetails(result.error);
}

describe("impression schema", () => {
  it("accepts a well-formed impression and keeps it unchanged", () => {
    expect(schema.parse(valid)).toEqual(valid);
  });

  it("accepts ids up to 128 characters of the allowed set", () => {
    expect(problems({ ...valid, id: "A-z.0_9:".repeat(16) })).toEqual([]);
  });

  it.each([
    ["empty", ""],
    ["129 characters", "a".repeat(129)],
    ["a space", "a b"],
    ["a slash", "a/b"],
    ["non-ASCII", "é"],
    ["a quote", 'a"b'],
  ])("rejects an id with %s", (_, id) => {
    expect(problems({ ...valid, id })).toEqual([
      { path: "id", message: "id must be 1-128 characters of A-Z a-z 0-9 . _ : -" },
    ]);
  });

  it.each(["userId", "adId"])("bounds %s like id", (field) => {
    expect(problems({ ...valid, [field]: "x".repeat(129) })).toEqual([
      { path: field, message: `${field} must be 1-128 characters of A-Z a-z 0-9 . _ : -` },
    ]);
    expect(problems({ ...valid, [field]: 42 })).toEqual([{ path: field, message: `${field} must be a string` }]);
  });

  it("names every missing field; ts, userId and kind may be left out", () => {
    expect(problems({})).toEqual([
      { path: "id", message: "id is required" },
      { path: "adId", message: "adId is required" },
    ]);
    const { ts: _, userId: __, ...minimal } = valid;
    expect(schema.parse(minimal)).toEqual(minimal);
  });

  it("takes every event kind and refuses any other, naming them", () => {
    for (const kind of [
      "impression",
      "viewable",
      "click",
      "start",
      "firstQuartile",
      "midpoint",
      "thirdQuartile",
      "complete",
    ]) {
      expect(problems({ ...valid, kind })).toEqual([]);
    }
    expect(problems({ ...valid, kind: "Click" })).toEqual([
      {
        path: "kind",
        message:
          "kind must be one of impression, viewable, click, start, firstQuartile, midpoint, thirdQuartile, complete",
      },
    ]);
  });

  it("rejects a ts that is not an integer number of milliseconds", () => {
    expect(problems({ ...valid, ts: "1768478400000" })).toEqual([{ path: "ts", message: "ts must be a number" }]);
    expect(problems({ ...valid, ts: NOW + 0.5 })).toEqual([
      { path: "ts", message: "ts must be an integer (epoch milliseconds)" },
    ]);
  });

  it("accepts ts up to the allowed clock skew ahead and rejects beyond it", () => {
    expect(problems({ ...valid, ts: NOW + 60_000 })).toEqual([]);
    expect(problems({ ...valid, ts: NOW + 60_001 })).toEqual([
      { path: "ts", message: "ts must not be more than 60000 ms in the future (epoch milliseconds)" },
    ]);
  });

  it("rejects ts older than the retention period", () => {
    const retention = 30 * 86_400_000;
    expect(problems({ ...valid, ts: NOW - retention })).toEqual([]);
    expect(problems({ ...valid, ts: NOW - retention - 1 })).toEqual([
      { path: "ts", message: "ts must not be older than 30 days (epoch milliseconds)" },
    ]);
    expect(problems({ ...valid, ts: 1768478400 })).toHaveLength(1);
  });

  it("rejects unknown fields, naming them", () => {
    expect(problems({ ...valid, campaign: "x" })).toEqual([{ path: "event", message: 'Unrecognized key: "campaign"' }]);
  });

  it("rejects anything that is not an object", () => {
    for (const input of [null, [valid], "event", 1]) {
      expect(problems(input)).toEqual([{ path: "event", message: "an event must be a JSON object" }]);
    }
  });
});

describe("encodeImpression", () => {
  it("is the compact JSON of the event, which decodes back to the same event", () => {
    const encoded = encodeImpression(valid);
    expect(encoded).toBe(JSON.stringify(valid));
    expect(schema.parse(JSON.parse(encoded))).toEqual(valid);
  });
});
