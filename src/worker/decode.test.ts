import { describe, expect, it } from "vitest";
import { z } from "zod";
import { encodeImpressionBytes } from "../impression/codec.ts";
import { SENDER_FIELDS } from "../impression/fields.ts";
import { wireImpressionSchema } from "../impression/schema.ts";
import type { ConsumedMessage } from "../kafka/consumer.ts";
import { createDecoder } from "./decode.ts";

const DAY = 86_400_000;
const acceptedAt = Date.UTC(2026, 0, 15, 12);
const decode = createDecoder({ maxFutureSkewMs: 60_000, retentionDays: 30 });
const message = (value: string | undefined, timestamp = acceptedAt): ConsumedMessage => ({
  topic: "t",
  partition: 0,
  offset: 0n,
  leaderEpoch: 0,
  timestamp: BigInt(timestamp),
  key: undefined,
  value: value === undefined ? undefined : Buffer.from(value),
});
const valid = { id: "i1", ts: acceptedAt - 1000, userId: "u1", adId: "a1" };

describe("decoding a Kafka message", () => {
  it("returns the impression of a valid value", () => {
    expect(decode(message(JSON.stringify(valid)))).toEqual({ ok: true, event: valid });
  });

  it("judges time limits against when the API accepted the event, not when the worker reads it", () => {
    const nearRetention = { ...valid, ts: acceptedAt - 30 * DAY + 1000 };
    expect(decode(message(JSON.stringify(nearRetention))).ok).toBe(true);
    expect(decode(message(JSON.stringify(valid), acceptedAt - 2 * 60_000))).toMatchObject({
      ok: false,
      reason: expect.stringContaining("ts must not be more than 60000 ms in the future"),
    });
  });

  it("reads a kind and leaves out a user id that is not there (a viewer not identified)", () => {
    const { userId: _, ...anonymous } = valid;
    const click = { ...anonymous, kind: "click" };
    expect(decode(message(JSON.stringify(click)))).toEqual({ ok: true, event: click });
    expect(decode(message(JSON.stringify(anonymous)))).toEqual({ ok: true, event: anonymous });
  });

  it("takes an unknown kind for poison: a newer API's kind needs the workers deployed first", () => {
    expect(decode(message(JSON.stringify({ ...valid, kind: "hover" })))).toMatchObject({
      ok: false,
      code: "invalid_impression",
      reason: expect.stringContaining("kind must be one of impression, viewable"),
    });
  });

  it("ignores a field it does not know (a newer API's), so the event is still counted", () => {
    const fromNewerApi = JSON.stringify({ ...valid, placement: "top-banner", viewable: true });
    expect(decode(message(fromNewerApi))).toEqual({ ok: true, event: valid });
  });

  it("reads the traffic label and network the API set, and an older API's message without them", () => {
    const labelled = { ...valid, traffic: "bot", ipPrefix: "203.0.113.0/24" };
    expect(decode(message(JSON.stringify(labelled)))).toEqual({ ok: true, event: labelled });
    const v6 = { ...valid, traffic: "valid", ipPrefix: "2001:db8:1::/48" };
    expect(decode(message(JSON.stringify(v6)))).toEqual({ ok: true, event: v6 });
    expect(decode(message(JSON.stringify(valid)))).toEqual({ ok: true, event: valid });
  });

  it("takes a traffic label it does not know (a newer API's reason), so the event is still counted", () => {
    const newer = { ...valid, traffic: "sophisticated_ivt" };
    expect(decode(message(JSON.stringify(newer)))).toEqual({ ok: true, event: newer });
  });

  it("writes messages a worker of before traffic labels still counts, as the same impression", () => {
    // That worker's contract: the sender's fields with today's checks, in a z.object, which ignores other keys.
    const wire = wireImpressionSchema({ maxFutureSkewMs: 60_000, retentionDays: 30, now: () => acceptedAt });
    const shape = (wire as unknown as z.ZodObject).shape;
    const olderWorker = z.object(Object.fromEntries(SENDER_FIELDS.map((f) => [f.name, shape[f.name] as z.ZodType])));
    const sent = { ...valid, userAgent: "curl/8.5.0", ip: "203.0.113.9" };
    const value = encodeImpressionBytes(sent, acceptedAt, { traffic: "bot", ipPrefix: "203.0.113.0/24" });
    expect(JSON.parse(String(value))).toEqual({ ...valid, traffic: "bot", ipPrefix: "203.0.113.0/24" });
    expect(olderWorker.safeParse(JSON.parse(String(value)))).toEqual({ success: true, data: valid });
    expect(decode(message(String(value)))).toEqual({
      ok: true,
      event: { ...valid, traffic: "bot", ipPrefix: "203.0.113.0/24" },
    });
  });

  it("never reads what a sender said of the viewer from the wire", () => {
    const withEvidence = JSON.stringify({ ...valid, userAgent: "curl/8.5.0", ip: "203.0.113.9", webdriver: true });
    expect(decode(message(withEvidence))).toEqual({ ok: true, event: valid });
  });

  it.each([
    ["an empty value", undefined, "empty_value", "empty value"],
    ["malformed JSON", "{not json", "malformed_json", "malformed JSON"],
    [
      "a missing field",
      JSON.stringify({ id: "i1", ts: acceptedAt, userId: "u1", kind: "viewable" }),
      "invalid_impression",
      "adId: adId is required",
    ],
    ["a non-object", "42", "invalid_impression", "an event must be a JSON object"],
    [
      "a traffic label that is not a word",
      JSON.stringify({ ...valid, traffic: "Bot Traffic" }),
      "invalid_impression",
      "traffic must be a label",
    ],
    [
      "a network that is not one",
      JSON.stringify({ ...valid, ipPrefix: "203.0.113.9" }),
      "invalid_impression",
      "ipPrefix must be an address and a prefix length",
    ],
  ])("gives a code and a reason for %s", (_, value, code, reason) => {
    expect(decode(message(value))).toEqual({ ok: false, code, reason: expect.stringContaining(reason) });
  });
});
