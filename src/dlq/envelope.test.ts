import { describe, expect, it } from "vitest";
import { parseEnvelope, reasonMatches } from "./envelope.ts";

const source = { topic: "impressions", partition: 3, offset: "17" };
/** A dead letter's value as a worker writes it, with `fields` in place of its own. */
const written = (fields: Record<string, unknown>) =>
  JSON.stringify({
    reason: "malformed JSON: Unexpected token",
    code: "malformed_json",
    source: { ...source, timestamp: "1764000000123" },
    key: "k1",
    value: "{not json",
    ...fields,
  });

describe("a dead letter's envelope", () => {
  it("carries why (the code and the reason) and when the original message was produced", () => {
    expect(parseEnvelope(written({}))).toEqual({
      reason: "malformed JSON: Unexpected token",
      code: "malformed_json",
      source: { ...source, timestamp: 1_764_000_000_123 },
      key: "k1",
      value: "{not json",
    });
  });

  it("one written before the code and the timestamp were kept: the code from the reason, no timestamp", () => {
    const older = (reason: string) => parseEnvelope(JSON.stringify({ reason, source, key: null, value: null }));
    expect(older("invalid impression: ts: expected number")).toEqual({
      reason: "invalid impression: ts: expected number",
      code: "invalid_impression",
      source: { ...source, timestamp: undefined },
      key: null,
      value: null,
    });
    expect(older("empty value")?.code).toBe("empty_value");
    expect(older("malformed JSON: x")?.code).toBe("malformed_json");
    expect(older("a reason no worker gives")?.code).toBeUndefined();
  });

  it("a code or a timestamp it does not know is not taken on trust", () => {
    const value = written({ reason: "empty value", code: "gone_wrong", source: { ...source, timestamp: "yesterday" } });
    expect(parseEnvelope(value)).toMatchObject({ code: "empty_value", source: { timestamp: undefined } });
  });

  it("is undefined for a value this app did not write", () => {
    for (const value of [undefined, "", "not json", "null", "42", '{"reason":"r"}', '{"reason":1,"source":{}}']) {
      expect(parseEnvelope(value)).toBeUndefined();
    }
    expect(parseEnvelope(JSON.stringify({ reason: "r", source: { ...source, offset: 17 } }))).toBeUndefined();
  });

  it("--reason matches the code exactly, or a part of the reason in any case", () => {
    const envelope = parseEnvelope(
      JSON.stringify({ reason: "invalid impression: adId: Required", code: "invalid_impression", source }),
    );
    expect(reasonMatches(envelope, "invalid_impression")).toBe(true);
    expect(reasonMatches(envelope, "ADID: req")).toBe(true);
    expect(reasonMatches(envelope, "malformed_json")).toBe(false);
    expect(reasonMatches(undefined, "invalid_impression")).toBe(false);
  });
});
