import { describe, expect, it } from "vitest";
import { impressionCheck } from "../impression/codec.ts";
import { impressionSchema } from "../impression/schema.ts";
import { MalformedLine, parseNdjson, validateBatch } from "./batch.ts";

const limits = { maxFutureSkewMs: 60_000, retentionDays: 30 };
const validation = { schema: impressionSchema(limits), check: impressionCheck(limits) };
const unstamped = () => undefined;
const ts = Date.now() - 1_000;
const event = (id: string) => ({ id, ts, userId: "u-1", adId: "ad-1" });

describe("parseNdjson", () => {
  it("gives one item per line; a final newline is optional", () => {
    expect(parseNdjson('{"a":1}\n{"a":2}\n').items).toEqual([{ a: 1 }, { a: 2 }]);
    expect(parseNdjson('{"a":1}\n{"a":2}').items).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it("turns a line that is not JSON, or an empty line inside the body, into a rejected item of its own", () => {
    const [good, bad, empty, last] = parseNdjson('{"a":1}\n{"a":\n\n{"a":3}\n').items;
    expect(good).toEqual({ a: 1 });
    expect(bad).toBeInstanceOf(MalformedLine);
    expect((bad as MalformedLine).message).toMatch(/^malformed JSON: /);
    expect((empty as MalformedLine).message).toBe("empty line: send one JSON event per line");
    expect(last).toEqual({ a: 3 });
  });
});

describe("validateBatch", () => {
  it("keys valid events by id as compact JSON and says which items were rejected and why", () => {
    const { records, rejected } = validateBatch(
      [event("e1"), { ...event("e2"), extra: true }, new MalformedLine("malformed JSON: x"), event("e3")],
      validation,
      Date.now(),
      unstamped,
    );
    expect(records.map((r) => r.key)).toEqual(["e1", "e3"]);
    expect(JSON.parse(String(records[0]?.value))).toEqual(event("e1"));
    expect(rejected).toEqual([
      { index: 1, error: 'Unrecognized key: "extra"' },
      { index: 2, error: "malformed JSON: x" },
    ]);
  });

  it("stamps the items sent without ts with the time the batch came in", () => {
    const receivedAt = Date.now();
    const { id: _, ...withoutId } = event("x");
    const { ts: _ts, ...withoutTs } = event("e1");
    const { records, rejected } = validateBatch([withoutTs, event("e2"), withoutId], validation, receivedAt, unstamped);
    expect(records.map((r) => JSON.parse(String(r.value)))).toEqual([{ ...withoutTs, ts: receivedAt }, event("e2")]);
    expect(rejected).toEqual([{ index: 2, error: "id is required" }]);
  });

  it("writes each event's stamp, from stampOf, and says its label; the viewer's fields are not written", () => {
    const stampOf = (e: { userAgent?: string }) =>
      e.userAgent === undefined ? undefined : { traffic: "bot", ipPrefix: "203.0.113.0/24" };
    const { records, labels } = validateBatch(
      [event("e1"), { ...event("e2"), userAgent: "curl/8.5.0", ip: "203.0.113.9" }],
      validation,
      Date.now(),
      stampOf,
    );
    expect(records.map((r) => JSON.parse(String(r.value)))).toEqual([
      event("e1"),
      { ...event("e2"), traffic: "bot", ipPrefix: "203.0.113.0/24" },
    ]);
    expect(labels).toEqual([undefined, "bot"]);
  });
});
