import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchemaCompiler } from "fastify";
import type { FastifyRouteSchemaDef } from "fastify/types/schema.js";
import { validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { ChargeEvents } from "../http/access-hooks.ts";
import { BODY_ERRORS } from "../http/error-responses.ts";
import { responses } from "../http/schemas.ts";
import { encodeImpressionBytes, impressionCheck } from "../impression/codec.ts";
import { exampleImpressions, impressionSchema, type SentImpression } from "../impression/schema.ts";
import type { TrafficClassifier } from "../traffic/classify.ts";
import { UNCLASSIFIED } from "../traffic/labels.ts";
import { Admission, type BodyAccount } from "./admission.ts";
import { NdjsonBody, parseNdjson, validateBatch } from "./batch.ts";
import { DELIVERY_ERRORS, type Deliver } from "./deliver.ts";
import { type BodyDone, BodyIntake, INTAKE_ERRORS, type IntakeLimits } from "./intake.ts";
import { BatchScan } from "./scan.ts";
import { requestFacts } from "./viewer.ts";

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
  /** Every body's budgets: its minimum rate, and the bodies one client or key may send at once. */
  bodies: IntakeLimits;
  /** Labels each event's traffic (src/traffic/); undefined (IVT_CLASSIFICATION=off): every event unclassified. */
  traffic?: TrafficClassifier;
  /** Counts acknowledged events by traffic label; undefined when metrics are off. */
  countTraffic?: (label: string, events: number) => void;
}

/**
 * Plain JSON.parse, without Fastify's prototype-poisoning scan (a measurable cost on 100 KB batches): a
 * "__proto__" key becomes an own property, which the strict impression schema rejects as an unknown field.
 */
function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new AppError("empty_body", "the request body is empty; send a JSON document");
  try {
    return JSON.parse(body.toString());
  } catch (error) {
    throw new AppError("malformed_json", `the body is not valid JSON: ${(error as Error).message}`);
  }
}

const parseNdjsonBody = (body: Buffer) => parseNdjson(body.toString());

/**
 * Batch requests parsed, validated and awaiting their ack at once: enough to fill the next produce request
 * while one is in flight (16 x 1,000 events) ...
 */
export const BATCHES_IN_PROGRESS = 16;
/** ... and the bodies' bytes held at once: each costs a few times its size once parsed and encoded. */
export const BATCH_BYTES_IN_PROGRESS = 16 * 1024 * 1024;

/** Reads one batch body (a content-type parser's work): scanned by `scan` if given, parsed by `parse`. */
export type BatchReader = (
  request: FastifyRequest,
  payload: IncomingMessage,
  scan: BatchScan | undefined,
  parse: (body: Buffer) => unknown,
  done: BodyDone,
) => void;

/**
 * Reads the batch bodies of `scope` through one Admission (BATCH_BYTES_IN_PROGRESS of bytes received,
 * BATCHES_IN_PROGRESS turns, a 503 past `maxWaitMs` of waiting) and `intake`'s budgets, and gives back what
 * each request held however it ends. The returned reader is what the scope's content-type parsers call.
 */
export function admitBatches(
  scope: FastifyInstance,
  limits: { intake: BodyIntake; maxWaitMs: number; maxBodyBytes: number },
): BatchReader {
  const admission = new Admission({
    maxBytes: BATCH_BYTES_IN_PROGRESS,
    maxBatches: BATCHES_IN_PROGRESS,
    maxWaitMs: limits.maxWaitMs,
  });
  /** Each request's account, given back once it is answered or its connection is gone. */
  const accounts = new WeakMap<object, BodyAccount>();
  scope.addHook("onRequest", (request, reply, done) => {
    const account = admission.open();
    accounts.set(request, account);
    // The response's close comes last, however the request ends: answered, refused, or its sender gone.
    reply.raw.once("close", () => account.close());
    done();
  });
  return (request, payload, scan, parse, done) => {
    const account = accounts.get(request);
    limits.intake.read(request, payload, { maxBytes: limits.maxBodyBytes, parse, scan, account }, done);
  };
}

/**
 * /event's 202 body, serialized once and typed by the response schema: the response serializer would check
 * this constant against the schema with zod on every request.
 */
const ONE_ACCEPTED = JSON.stringify({ accepted: 1, rejected: [] } satisfies z.input<typeof responses.accepted>);
/** One event is well under 1 KiB; anything far larger is not an event (nor an item of a batch). */
const EVENT_MAX_BYTES = 16 * 1024;
const EVENT_BODY = { maxBytes: EVENT_MAX_BYTES, parse: parseJsonBody };

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

/** Counts a batch's labels: runs of one label (the usual batch has one) are counted at once. */
function countLabels(labels: readonly (string | undefined)[], count: (label: string, events: number) => void): void {
  let run = 0;
  for (let i = 0; i < labels.length; i++) {
    run++;
    if (i === labels.length - 1 || labels[i + 1] !== labels[i]) {
      count(labels[i] ?? UNCLASSIFIED, run);
      run = 0;
    }
  }
}

/** POST /event (one impression) and POST /events (JSON array or NDJSON); 202 only after Kafka's ack. */
export const ingestRoutes: FastifyPluginAsync<IngestOptions> = async (app, options) => {
  const { deliver } = options;
  const limits = { maxFutureSkewMs: options.maxFutureSkewMs, retentionDays: options.retentionDays };
  const schema = impressionSchema(limits);
  const batchValidation = { schema, check: impressionCheck(limits) };
  const { traffic, countTraffic } = options;
  const intake = new BodyIntake(options.bodies);
  // A stop cuts the bodies still arriving at once; the requests already received are answered.
  app.addHook("preClose", (done) => {
    intake.stop();
    done();
  });
  app.addHook("onClose", (_instance, done) => {
    intake.close();
    done();
  });
  // JSON, and the same JSON as text/plain (what navigator.sendBeacon sends for a string, in any charset: the
  // fields are ASCII), NDJSON for /events; forms, multipart and others are answered 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(["application/json", "text/plain"], (request, payload, done) => {
    intake.read(request, payload, EVENT_BODY, done);
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
        errors: ["invalid_event", ...BODY_ERRORS, ...INTAKE_ERRORS, "rate_limited", ...DELIVERY_ERRORS],
      },
    },
    async (request, reply) => {
      const event = request.body;
      options.chargeEvents(request, reply, 1);
      const receivedAt = Date.now();
      const stamp = traffic?.stamp(traffic.request(requestFacts(request, "post")), event, receivedAt);
      await deliver("/event", [{ key: event.id, value: encodeImpressionBytes(event, receivedAt, stamp) }]);
      countTraffic?.(stamp?.traffic ?? UNCLASSIFIED, 1);
      // As the untyped reply: the typed one takes the body as an object, not the already serialized text.
      return (reply as FastifyReply).code(202).type("application/json; charset=utf-8").send(ONE_ACCEPTED);
    },
  );

  await app.register(async (batchScope) => {
    const readBatch = admitBatches(batchScope, {
      intake,
      maxWaitMs: options.admissionWaitMs,
      maxBodyBytes: options.batchMaxBytes,
    });
    const scanLimits = { maxItems: options.batchMaxEvents, maxItemBytes: EVENT_MAX_BYTES };
    // Each body is scanned as it arrives, so a batch over the limits is refused before it is parsed.
    batchScope.removeAllContentTypeParsers();
    batchScope.addContentTypeParser(["application/json", "text/plain"], (request, payload, done) => {
      readBatch(request, payload, new BatchScan("json", scanLimits), parseJsonBody, done);
    });
    batchScope.addContentTypeParser("application/x-ndjson", (request, payload, done) => {
      readBatch(request, payload, new BatchScan("ndjson", scanLimits), parseNdjsonBody, done);
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
            ...INTAKE_ERRORS,
            "invalid_batch",
            "empty_batch",
            "all_events_rejected",
            "too_many_events",
            "event_too_large",
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
        // The request's headers are read once, whatever the number of events.
        const signals = traffic?.request(requestFacts(request, "post"));
        const stampOf = (event: SentImpression) =>
          traffic?.stamp(signals as NonNullable<typeof signals>, event, receivedAt);
        const { records, labels, rejected, malformed } = validateBatch(items, batchValidation, receivedAt, stampOf);
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
        if (countTraffic) countLabels(labels, countTraffic);
        return reply.code(202).send({ accepted: records.length, rejected });
      },
    );
  });
};
