import { describe, expect, it } from "vitest";
import { encodeImpressionBytes, impressionCheck } from "./codec.ts";
import { impressionSchema } from "./schema.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const limits = { maxFutureSkewMs: 60_000, retentionDays: 30, now: () => NOW };
const schema = impressionSchema(limits);
const check = impressionCheck(limits);
/** The fast path as the batches use it: the value of an item the check passes, else undefined. */
const encodeValid = (item: unknown, receivedAt: number) =>
  check(item) ? encodeImpressionBytes(item, receivedAt) : undefined;
const RETENTION_MS = 30 * 86_400_000;
const valid = { id: "5f1c2f8e-3c1a-4b7e-9f4e-2d7c1a9b0e11", ts: NOW - 1000, userId: "user_42", adId: "ad:7" };
/** When the API received the items: the time an item sent without ts gets. */
const RECEIVED_AT = NOW + 5;

/** Values of every JSON type and the edges of each rule. */
const identifiers: unknown[] = [
  "a",
  "A-z.0_9:",
  "x".repeat(128),
  "x".repeat(129),
  "",
  "a b",
  "é",
  'a"b',
  "a\\b",
  7,
  null,
  [],
  {},
  true,
];
const kinds: unknown[] = [
  "impression",
  "viewable",
  "click",
  "complete",
  "thirdQuartile",
  "Viewable",
  "",
  "hover",
  1,
  null,
];
const timestamps: unknown[] = [
  NOW,
  NOW + 60_000,
  NOW + 60_001,
  NOW - RETENTION_MS,
  NOW - RETENTION_MS - 1,
  NOW + 0.5,
  String(NOW),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -0,
  2 ** 60,
  null,
  [],
  {},
];

/** Items a sender might send: valid ones, every field replaced by each value above, fields missing or added. */
function corpus(): unknown[] {
  const items: unknown[] = [valid, null, [], [valid], "event", 1, {}, JSON.parse('{"__proto__":{"id":"x"}}')];
  for (const field of ["id", "userId", "adId"] as const) {
    for (const value of identifiers) items.push({ ...valid, [field]: value });
  }
  for (const ts of [...timestamps, undefined]) items.push({ ...valid, ts });
  // What a sender may say of the viewer: valid, at the edges, and of the wrong type.
  for (const userAgent of ["Mozilla/5.0 (X11; Linux x86_64)", "", "a".repeat(1024), "a".repeat(1025), 7, null]) {
    items.push({ ...valid, userAgent });
  }
  for (const ip of ["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1", "1.2.3", "01.2.3.4", "example.com", 7]) {
    items.push({ ...valid, ip });
  }
  for (const webdriver of [true, false, "true", 1, null]) items.push({ ...valid, webdriver });
  // The API's own fields are never taken from a sender.
  items.push({ ...valid, traffic: "valid" }, { ...valid, ipPrefix: "203.0.113.0/24" });
  for (const kind of [...kinds, undefined]) items.push({ ...valid, kind });
  const { userId: _, ...anonymous } = valid;
  items.push(anonymous, { ...anonymous, kind: "click" }, { ...valid, userId: undefined });
  for (const field of Object.keys(valid)) {
    const { [field as keyof typeof valid]: _, ...rest } = valid;
    items.push(rest, { ...rest, campaign: "x" });
  }
  items.push({ ...valid, campaign: "x" }, JSON.parse(`{"__proto__":1,${JSON.stringify(valid).slice(1)}`));
  items.push(Object.assign(Object.create({ inherited: true }), valid));
  return items;
}

describe("impressionCheck, the batches' fast path", () => {
  it("gives encodeImpressionBytes' value for a valid impression", () => {
    expect(encodeValid(valid, RECEIVED_AT)).toEqual(encodeImpressionBytes(valid));
  });

  it("writes the time of receipt as ts for an impression sent without one: the wire always has ts", () => {
    const { ts: _, ...withoutTs } = valid;
    expect(JSON.parse(String(encodeValid(withoutTs, RECEIVED_AT)))).toEqual({ ...valid, ts: RECEIVED_AT });
    expect(String(encodeValid(withoutTs, RECEIVED_AT))).toBe(JSON.stringify({ ...valid, ts: RECEIVED_AT }));
  });

  it("writes an impression's bytes as before kinds: kind impression and a missing userId are left out", () => {
    const { userId: _, ...anonymous } = valid;
    expect(String(encodeValid({ ...valid, kind: "impression" }, RECEIVED_AT))).toBe(JSON.stringify(valid));
    expect(String(encodeValid({ ...anonymous, kind: "viewable" }, RECEIVED_AT))).toBe(
      JSON.stringify({ ...anonymous, kind: "viewable" }),
    );
  });

  it("accepts exactly what impressionSchema accepts, with the value of what the schema returns", () => {
    let accepted = 0;
    for (const item of corpus()) {
      const parsed = schema.safeParse(item);
      const value = encodeValid(item, RECEIVED_AT);
      const expected = parsed.success ? encodeImpressionBytes(parsed.data, RECEIVED_AT) : undefined;
      expect({ item, value }).toEqual({ item, value: expected });
      if (value !== undefined) accepted++;
    }
    // The corpus holds valid items at each edge (longest ids, ts at the skew and retention limits).
    expect(accepted).toBeGreaterThan(10);
  });

  it("writes the stamp's fields after the sender's, and neither the viewer's fields nor an absent stamp field", () => {
    const sent = { ...valid, userAgent: "curl/8.5.0", ip: "203.0.113.9", webdriver: true };
    expect(String(encodeImpressionBytes(sent, RECEIVED_AT, { traffic: "bot", ipPrefix: "203.0.113.0/24" }))).toBe(
      JSON.stringify({ ...valid, traffic: "bot", ipPrefix: "203.0.113.0/24" }),
    );
    expect(String(encodeImpressionBytes(sent, RECEIVED_AT, { traffic: "valid" }))).toBe(
      JSON.stringify({ ...valid, traffic: "valid" }),
    );
    expect(String(encodeImpressionBytes(sent, RECEIVED_AT))).toBe(JSON.stringify(valid));
  });
});
