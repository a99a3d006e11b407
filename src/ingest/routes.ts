import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifySchemaCompiler } from "fastify";
import type { FastifyRouteSchemaDef } from "fastify/types/schema.js";
import { validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ChargeEvents } from "../api/auth.ts";
import { BODY_ERRORS } from "../api/errors.ts";
import { responses } from "../api/schemas.ts";
import { AppError } from "../errors.ts";
import { encodeImpressionBytes, impressionCheck, validImpressionEncoder } from "../impression/codec.ts";
import { exampleImpressions, impressionSchema, type SentImpression } from "../impression/schema.ts";
import { Admission, type Release } from "./admission.ts";
import { NdjsonBody, parseNdjson, validateBatch } from "./batch.ts";
import { DELIVERY_ERRORS, type Deliver } from "./deliver.ts";

export interface IngestOptions {
  deliver: Deliver;
  /** Counts events refused for failing validation, by error code; undefined when metrics are off. */
  countRejected?: (reason: "invalid_event" | "malformed_json", events: number) => void;
  maxFutureSkewMs: number;
  retentionDays: number;
  batchMaxEvents: number;
  batchMaxBytes: number;
  /** Longest a batch request waits for its turn before a 503. */
  admissionWaitMs: number;
  /** Rate limits: throws a 429 when the key or the client IP is out of events. */
  chargeEvents: ChargeEvents;
}

/**
 * Plain JSON.parse, without Fastify's prototype-poisoning scan (a measurable cost on 100 KB batches): a
 * "__proto__" key becomes an own property, which the strict impression schema rejects as an unknown field.
 */
function parseJsonBody(body: string): unknown {
  if (body.length === 0) throw new AppError("empty_body", "the request body is empty; send a JSON document");
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new AppError("malformed_json", `the body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Batch requests read, validated and awaiting their ack at once: enough to fill the next produce request
 * while one is in flight (16 x 1,000 events) ...
 */
export const BATCHES_IN_PROGRESS = 16;
/** ... and the bodies they may hold together: each costs a few times its size once parsed and encoded. */
export const BATCH_BYTES_IN_PROGRESS = 16 * 1024 * 1024;
/**
 * Lets the requests of `scope` read their bodies only when Admission gives them a turn (BATCHES_IN_PROGRESS,
 * BATCH_BYTES_IN_PROGRESS), and frees the turn however each request ends.
 */
export function admitBatches(scope: FastifyInstance, limits: { maxWaitMs: number; maxBodyBytes: number }): void {
  const admission = new Admission({
    maxRequests: BATCHES_IN_PROGRESS,
    maxBytes: BATCH_BYTES_IN_PROGRESS,
    maxWaitMs: limits.maxWaitMs,
  });
  /** Admitted requests and how to give their turn back. */
  const admitted = new WeakMap<object, Release>();
  // Admission comes before the body is read; the turn is freed however the request ends.
  scope.addHook("onRequest", async (request) => {
    // A declared length over the limit is refused by the body parser (413); chunked bodies count as the limit.
    const declared = Number(request.headers["content-length"]);
    const bytes = Number.isFinite(declared) ? Math.min(declared, limits.maxBodyBytes) : limits.maxBodyBytes;
    const release = await admission.acquire(bytes);
    if (request.raw.destroyed) {
      // The sender hung up while it waited: onRequestAbort found no turn to free, so give this one back.
      release();
      throw new AppError("sender_gone", "the sender closed the connection before its turn");
    }
    admitted.set(request, release);
  });
  const free = async (request: object) => {
    admitted.get(request)?.();
    admitted.delete(request);
  };
  scope.addHook("onResponse", free);
  scope.addHook("onRequestAbort", free);
}

/**
 * /event's 202 body, serialized once and typed by the response schema: the response serializer would check
 * this constant against the schema with zod on every request.
 */
const ONE_ACCEPTED = JSON.stringify({ accepted: 1, rejected: [] } satisfies z.input<typeof responses.accepted>);
/** One event is well under 1 KiB; anything far larger is not an event. */
const EVENT_MAX_BYTES = 16 * 1024;

/**
 * The route's zod validator behind `check`, impressionCheck's allocation-free test: a body it passes is the
 * schema's output as it is (the schema has no transforms), anything else goes to the schema, which says why.
 */
function checkedValidator(check: (item: unknown) => boolean): FastifySchemaCompiler<unknown> {
  return (route) => {
    // Compiled for the body part only, whose schema is the route's zod body schema.
    const judge = validatorCompiler(route as FastifyRouteSchemaDef<z.ZodType>);
    return (data) => (check(data) ? { value: data } : judge(data));
  };
}

/** POST /events bodies, for the document only: the route parses them itself and validates each item. */
function batchBodies(event: z.ZodType<SentImpression>, maxEvents: number) {
  const examples = exampleImpressions(Date.now());
  const array = z
    .array(event)
    .min(1)
    .max(maxEvents)
    .meta({ examples: [examples] });
  const ndjson = z.string().meta({
    description: "one impression per line, as JSON; a final newline is optional",
    examples: [examples.map((example) => `${JSON.stringify(example)}\n`).join("")],
  });
  return { "application/json": array, "text/plain": array, "application/x-ndjson": ndjson };
}

/** POST /event (one impression) and POST /events (JSON array or NDJSON); 202 only after Kafka's ack. */
export const ingestRoutes: FastifyPluginAsync<IngestOptions> = async (app, options) => {
  const { deliver } = options;
  const limits = { maxFutureSkewMs: options.maxFutureSkewMs, retentionDays: options.retentionDays };
  const schema = impressionSchema(limits);
  const batchValidation = { schema, encodeValid: validImpressionEncoder(limits) };
  // JSON, and the same JSON as text/plain (what navigator.sendBeacon sends for a string, in any charset: the
  // fields are ASCII), NDJSON for /events; forms, multipart and others are answered 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(["application/json", "text/plain"], { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.withTypeProvider<ZodTypeProvider>().post(
    "/event",
    {
      bodyLimit: EVENT_MAX_BYTES,
      validatorCompiler: checkedValidator(impressionCheck(limits)),
      schema: {
        tags: ["ingest"],
        summary: "Send one impression",
        description:
          "One impression as JSON: `application/json`, or `text/plain` holding JSON (what `navigator.sendBeacon` " +
          `sends for a string), at most ${EVENT_MAX_BYTES} bytes. Without \`ts\` the event time is when the API ` +
          "received it. Answered once Kafka has acknowledged it.",
        consumes: ["application/json", "text/plain"],
        body: schema,
        response: { 202: responses.accepted },
        errors: ["invalid_event", ...BODY_ERRORS, "rate_limited", ...DELIVERY_ERRORS],
      },
    },
    async (request, reply) => {
      const event = request.body;
      options.chargeEvents(request, reply, 1);
      await deliver("/event", [{ key: event.id, value: encodeImpressionBytes(event, Date.now()) }]);
      // As the untyped reply: the typed one takes the body as an object, not the already serialized text.
      return (reply as FastifyReply).code(202).type("application/json; charset=utf-8").send(ONE_ACCEPTED);
    },
  );

  await app.register(async (batchScope) => {
    admitBatches(batchScope, { maxWaitMs: options.admissionWaitMs, maxBodyBytes: options.batchMaxBytes });
    batchScope.addContentTypeParser("application/x-ndjson", { parseAs: "string" }, (_request, body, done) => {
      done(null, parseNdjson(body as string));
    });
    batchScope.post(
      "/events",
      {
        bodyLimit: options.batchMaxBytes,
        schema: {
          tags: ["ingest"],
          summary: "Send a batch of impressions",
          description:
            "A JSON array of impressions (`application/json`, or `text/plain` holding it) or NDJSON, one per line " +
            `(\`application/x-ndjson\`): at most ${options.batchMaxEvents} events and ${options.batchMaxBytes} bytes. ` +
            "Each item is validated on its own: the valid ones are written, the invalid ones reported in `rejected` " +
            "by their 0-based index; an item without `ts` gets the time the API received the batch. Answered once " +
            "Kafka has acknowledged the valid ones.",
          documentedBody: batchBodies(schema, options.batchMaxEvents),
          response: { 202: responses.accepted },
          errors: [
            ...BODY_ERRORS,
            "invalid_batch",
            "empty_batch",
            "all_events_rejected",
            "too_many_events",
            "sender_gone",
            "overloaded",
            "rate_limited",
            "batch_over_rate_limit",
            ...DELIVERY_ERRORS,
          ],
        },
      },
      async (request, reply) => {
        const receivedAt = Date.now();
        const body = request.body;
        const items = body instanceof NdjsonBody ? body.items : body;
        if (!Array.isArray(items)) {
          throw new AppError(
            "invalid_batch",
            "send a JSON array of events, or NDJSON (one event per line) with Content-Type: application/x-ndjson",
          );
        }
        if (items.length === 0) throw new AppError("empty_batch", "the batch has no events");
        if (items.length > options.batchMaxEvents) {
          throw new AppError(
            "too_many_events",
            `a batch holds at most ${options.batchMaxEvents} events, this one has ${items.length}; split it`,
          );
        }
        options.chargeEvents(request, reply, items.length);
        const { records, rejected, malformed } = validateBatch(items, batchValidation, receivedAt);
        // The parsed items outweigh the records: let them go while the records wait for Kafka's ack.
        request.body = undefined;
        if (malformed > 0) options.countRejected?.("malformed_json", malformed);
        if (rejected.length > malformed) options.countRejected?.("invalid_event", rejected.length - malformed);
        if (records.length === 0) {
          throw new AppError("all_events_rejected", "no event in the batch is valid; see details.rejected", {
            details: { accepted: 0, rejected },
          });
        }
        await deliver("/events", records);
        return reply.code(202).send({ accepted: records.length, rejected });
      },
    );
  });
};
