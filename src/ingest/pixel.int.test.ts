import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { useIngestApp } from "../../test/support/ingest-app.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { PIXEL_GIF } from "./pixel.ts";

const suffix = randomUUID().slice(0, 8);
const config = testConfig({
  ...ownTopics("pixel"),
  KAFKA_PARTITIONS: "2",
  API_ROLE: "ingest",
});
const ingest = useIngestApp(config);

const pixel = (params: Record<string, string | number>) =>
  ingest.app.inject({ method: "GET", url: `/pixel.gif?${new URLSearchParams(params as Record<string, string>)}` });
const onTopic = async (id: string) => {
  const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) => seen.some((m) => m.key === id));
  const found = messages.find((m) => m.key === id);
  return found && JSON.parse(found.value);
};

describe("GET /pixel.gif", () => {
  it("answers a 1x1 transparent GIF that no cache keeps, once the event is on Kafka, timed when it arrived", async () => {
    const { id, adId, userId } = makeImpression(suffix);
    const before = Date.now();
    const response = await pixel({ id, adId, userId });
    const after = Date.now();
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("image/gif");
    expect(response.rawPayload.equals(PIXEL_GIF)).toBe(true);
    expect(response.rawPayload.subarray(0, 6).toString()).toBe("GIF89a");
    expect(response.headers).toMatchObject({
      "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
      pragma: "no-cache",
      expires: "0",
    });
    const event = await onTopic(id);
    expect(event).toMatchObject({ id, adId, userId });
    expect(event.ts).toBeGreaterThanOrEqual(before);
    expect(event.ts).toBeLessThanOrEqual(after);
  });

  it("keeps the ts it is given", async () => {
    const event = makeImpression(suffix, { ts: Date.now() - 60_000 });
    expect((await pixel({ ...event })).statusCode).toBe(200);
    // Labelled from the request (src/ingest/traffic.int.test.ts): inject's user agent, lightMyRequest, is a bot's.
    expect(await onTopic(event.id)).toEqual({ ...event, traffic: "bot", ipPrefix: "127.0.0.0/24" });
  });

  it("carries the event's kind, so VAST <Impression> and <Tracking> URLs work as they are", async () => {
    const { id, adId, userId } = makeImpression(suffix);
    for (const kind of ["start", "firstQuartile", "midpoint", "thirdQuartile", "complete", "viewable", "click"]) {
      expect((await pixel({ id, adId, userId, kind })).statusCode).toBe(200);
    }
    const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
      seen.some((m) => m.key === id && m.value.includes('"click"')),
    );
    const kinds = messages.filter((m) => m.key === id).map((m) => JSON.parse(m.value).kind);
    expect(kinds).toEqual(["start", "firstQuartile", "midpoint", "thirdQuartile", "complete", "viewable", "click"]);
  });

  it("takes an event without userId (a viewer not identified): none goes to Kafka", async () => {
    const { id, adId } = makeImpression(suffix);
    expect((await pixel({ id, adId })).statusCode).toBe(200);
    const event = await onTopic(id);
    // Its sender's fields, without userId (the API adds its traffic label and network).
    expect(
      Object.keys(event)
        .filter((field) => !["traffic", "ipPrefix"].includes(field))
        .sort(),
    ).toEqual(["adId", "id", "ts"]);
  });

  it("ignores cachebusters, substituted VAST macros and unsubstituted ones, and nothing else", async () => {
    const { id, adId, userId } = makeImpression(suffix);
    const busted = {
      id,
      adId,
      userId,
      kind: "midpoint",
      cb: "12345678",
      ord: "8374619283",
      rnd: "0.123",
      cachebuster: "x",
      _: "1764000000000",
      r: "04718264",
      t: "2026-12-01T10:30:15.250Z",
      ts2: "[TIMESTAMP]",
      c: "[CACHEBUSTING]",
    };
    expect((await pixel(busted)).statusCode).toBe(200);
    expect(await onTopic(id)).toMatchObject({ id, adId, userId, kind: "midpoint" });
    for (const [typo, message] of [
      [{ userid: "12345678" }, "unknown query parameter: userid"],
      [{ adID: "ad-7" }, "unknown query parameter: adID"],
      [{ x: "1234567" }, "unknown query parameter: x"],
    ] as const) {
      const response = await pixel({ id, adId, userId, ...typo });
      expect(response.statusCode).toBe(400);
      expect(response.json().message).toContain(message);
    }
  });

  it.each([
    ["an unknown kind", { id: "p5", adId: "a", kind: "hover" }, "kind must be one of impression, viewable"],
    ["a missing adId", { id: "p1", userId: "u" }, "adId is required"],
    ["a bad id", { id: "a b", adId: "a", userId: "u" }, "id must be 1-128 characters"],
    ["a ts that is not a number", { id: "p2", adId: "a", userId: "u", ts: "soon" }, "ts must be an integer"],
    ["a ts too far ahead", { id: "p3", adId: "a", userId: "u", ts: String(Date.now() + 3_600_000) }, "future"],
    ["an unknown parameter", { id: "p4", adId: "a", userId: "u", campaign: "x" }, "unknown query parameter: campaign"],
  ])("answers 400 with the usual JSON error for %s", async (_, params, message) => {
    const response = await pixel(params);
    expect(response.statusCode).toBe(400);
    expect(response.headers["content-type"]).toContain("application/json");
    expect(response.json().error).toBe("invalid_query");
    expect(response.json().message).toContain(message);
  });
});
