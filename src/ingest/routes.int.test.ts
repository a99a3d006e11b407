import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { useIngestApp } from "../../test/support/ingest-app.ts";
import { readTopic } from "../../test/support/kafka.ts";

const suffix = randomUUID().slice(0, 8);
const config = testConfig({
  ...ownTopics("ingest-routes"),
  KAFKA_PARTITIONS: "4",
  BATCH_MAX_EVENTS: "5",
  BATCH_MAX_BYTES: "4096",
  API_ROLE: "ingest",
});
const ingest = useIngestApp(config);

const impression = (overrides: Record<string, unknown> = {}) => makeImpression(suffix, overrides);

const postEvent = (body: unknown) =>
  ingest.app.inject({
    method: "POST",
    url: "/event",
    headers: { "content-type": "application/json" },
    payload: body as object,
  });
const postEvents = (payload: string, contentType = "application/json") =>
  ingest.app.inject({ method: "POST", url: "/events", headers: { "content-type": contentType }, payload });

describe("POST /event", () => {
  it("answers 202 and the event is on the topic, keyed by its id, as compact JSON", async () => {
    const event = impression();
    const response = await postEvent(event);
    expect(response.statusCode).toBe(202);
    expect(response.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(response.json()).toEqual({ accepted: 1, rejected: [] });

    const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) => seen.length >= 1);
    expect(messages).toEqual([{ key: event.id, value: JSON.stringify(event) }]);
  });

  it("stamps an event sent without ts with the time it arrived: the message on the topic has it", async () => {
    const { ts: _, ...event } = impression();
    const before = Date.now();
    const response = await postEvent(event);
    const after = Date.now();
    expect(response.statusCode).toBe(202);

    const [message] = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
      seen.some((m) => m.key === event.id),
    ).then((seen) => seen.filter((m) => m.key === event.id));
    const written = JSON.parse(message?.value ?? "{}");
    expect(written).toEqual({ ...event, ts: expect.any(Number) });
    expect(Object.keys(written)).toEqual(["id", "ts", "userId", "adId"]);
    expect(written.ts).toBeGreaterThanOrEqual(before);
    expect(written.ts).toBeLessThanOrEqual(after);
  });

  it("answers 400 naming each invalid field, with a clear message", async () => {
    const response = await postEvent({ id: "has space", ts: Date.now() + 3_600_000, userId: "u", extra: true });
    expect(response.statusCode).toBe(400);
    const body = response.json();
    expect(body.error).toBe("invalid_event");
    expect(body.details).toEqual([
      { path: "id", message: "id must be 1-128 characters of A-Z a-z 0-9 . _ : -" },
      {
        path: "ts",
        message: `ts must not be more than ${config.MAX_FUTURE_SKEW_MS} ms in the future (epoch milliseconds)`,
      },
      { path: "adId", message: "adId is required" },
      { path: "event", message: 'Unrecognized key: "extra"' },
    ]);
    expect(body.message).toContain("adId is required");
  });

  it("answers 400 for a JSON value that is not an object", async () => {
    const response = await postEvent([impression()]);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: "invalid_event", message: "an event must be a JSON object" });
  });

  it("answers 400 malformed_json for a body that is not JSON", async () => {
    const response = await ingest.app.inject({
      method: "POST",
      url: "/event",
      headers: { "content-type": "application/json" },
      payload: '{"id": "x",',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe("malformed_json");
  });

  it("rejects a __proto__ key as an unknown field", async () => {
    const event = impression();
    const payload = `{"__proto__":{"polluted":true},${JSON.stringify(event).slice(1)}`;
    const response = await ingest.app.inject({
      method: "POST",
      url: "/event",
      headers: { "content-type": "application/json" },
      payload,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().details).toEqual([{ path: "event", message: 'Unrecognized key: "__proto__"' }]);
  });

  it("answers 400 empty_body when there is no body", async () => {
    const response = await ingest.app.inject({
      method: "POST",
      url: "/event",
      headers: { "content-type": "application/json" },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe("empty_body");
  });

  it.each(["text/plain", "text/plain;charset=UTF-8", "text/plain; charset=ISO-8859-1"])(
    "takes the same JSON as %s (what navigator.sendBeacon sends), with the same answers",
    async (contentType) => {
      const event = impression();
      const post = (payload: string) =>
        ingest.app.inject({ method: "POST", url: "/event", headers: { "content-type": contentType }, payload });
      const accepted = await post(JSON.stringify(event));
      expect(accepted.statusCode).toBe(202);
      expect(accepted.json()).toEqual({ accepted: 1, rejected: [] });
      const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
        seen.some((m) => m.key === event.id),
      );
      expect(messages.find((m) => m.key === event.id)?.value).toBe(JSON.stringify(event));

      const invalid = await post(JSON.stringify({ ...event, adId: "" }));
      expect(invalid.statusCode).toBe(400);
      expect(invalid.json().error).toBe("invalid_event");
      const malformed = await post("{");
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().error).toBe("malformed_json");
    },
  );

  it.each(["application/x-ndjson", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])(
    "answers 415 for Content-Type %s",
    async (contentType) => {
      const response = await ingest.app.inject({
        method: "POST",
        url: "/event",
        headers: { "content-type": contentType },
        payload: JSON.stringify(impression()),
      });
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({ error: "unsupported_media_type" });
      expect(response.json().message).toContain("application/json");
    },
  );

  it("answers 413 for a body far larger than one event", async () => {
    const response = await postEvent(impression({ userId: "u".repeat(20_000) }));
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error: "payload_too_large" });
    expect(response.json().message).toContain("16384 bytes");
  });
});

describe("POST /events", () => {
  it("accepts a JSON array, says which items were rejected and why, and writes only the valid ones", async () => {
    const good = [impression(), impression()];
    const response = await postEvents(JSON.stringify([good[0], { ...impression(), ts: 1.5 }, good[1], { id: "x" }]));
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({
      accepted: 2,
      rejected: [
        { index: 1, error: "ts must be an integer (epoch milliseconds)" },
        { index: 3, error: "adId is required" },
      ],
    });
    const keys = (seen: { key: string }[]) => seen.map((m) => m.key);
    const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
      good.every((e) => keys(seen).includes(e.id)),
    );
    expect(keys(messages)).toEqual(expect.arrayContaining(good.map((e) => e.id)));
  });

  it("accepts NDJSON: a malformed or empty line rejects that line only", async () => {
    const good = impression();
    const body = `${JSON.stringify(good)}\n{"id":\n\n${JSON.stringify(impression({ adId: "" }))}\n`;
    const response = await postEvents(body, "application/x-ndjson");
    expect(response.statusCode).toBe(202);
    const result = response.json();
    expect(result.accepted).toBe(1);
    expect(result.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3]);
    expect(result.rejected[0].error).toMatch(/^malformed JSON/);
    expect(result.rejected[1].error).toMatch(/^empty line/);
    expect(result.rejected[2].error).toBe("adId must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  });

  it("answers 400 all_events_rejected with every reason when no item is valid", async () => {
    const response = await postEvents(JSON.stringify([{}, "x"]));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: "all_events_rejected",
      message: "no event in the batch is valid; see details.rejected",
      details: {
        accepted: 0,
        rejected: [
          { index: 0, error: "id is required; adId is required" },
          { index: 1, error: "an event must be a JSON object" },
        ],
      },
    });
  });

  it("answers 400 for a body that is not an array, and for an empty batch", async () => {
    const notArray = await postEvents(JSON.stringify(impression()));
    expect(notArray.statusCode).toBe(400);
    expect(notArray.json().error).toBe("invalid_batch");
    const empty = await postEvents("[]");
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error).toBe("empty_batch");
  });

  it("answers 413 for more events than BATCH_MAX_EVENTS and for more bytes than BATCH_MAX_BYTES", async () => {
    const tooMany = await postEvents(JSON.stringify(Array.from({ length: 6 }, () => impression())));
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json()).toMatchObject({ error: "too_many_events" });
    expect(tooMany.json().message).toContain("at most 5 events");

    const tooBig = await postEvents(JSON.stringify([impression({ userId: "u".repeat(5000) })]));
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json()).toMatchObject({ error: "payload_too_large" });
  });

  it("stamps the items sent without ts with the time the batch arrived, and keeps the others' ts", async () => {
    const { ts: _, ...stamped } = impression();
    const given = impression({ ts: Date.now() - 60_000 });
    const before = Date.now();
    const response = await postEvents(JSON.stringify([stamped, given]));
    const after = Date.now();
    expect(response.json()).toEqual({ accepted: 2, rejected: [] });

    const ids = [stamped.id, given.id];
    const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
      ids.every((id) => seen.some((m) => m.key === id)),
    );
    const written = (id: string) => JSON.parse(messages.find((m) => m.key === id)?.value ?? "{}");
    expect(written(given.id)).toEqual(given);
    expect(written(stamped.id)).toEqual({ ...stamped, ts: expect.any(Number) });
    expect(written(stamped.id).ts).toBeGreaterThanOrEqual(before);
    expect(written(stamped.id).ts).toBeLessThanOrEqual(after);
  });

  it("takes a JSON array as text/plain (a batch by sendBeacon)", async () => {
    const events = [impression(), impression()];
    const response = await postEvents(JSON.stringify(events), "text/plain;charset=UTF-8");
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 2, rejected: [] });
  });

  it("answers 400 malformed_json for a JSON array that does not parse", async () => {
    const response = await postEvents("[{");
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe("malformed_json");
  });
});

describe("routing", () => {
  it("answers 404 as JSON for an unknown route", async () => {
    const response = await ingest.app.inject({ method: "GET", url: "/nope" });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ error: "not_found" });
    expect(response.json().message).toContain("GET /nope");
  });

  it("does not serve /stats when API_ROLE=ingest", async () => {
    const response = await ingest.app.inject({ method: "GET", url: "/stats?timeWindowMinutes=5" });
    expect(response.statusCode).toBe(404);
  });
});
