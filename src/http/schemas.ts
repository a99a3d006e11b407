import fastJson from "fast-json-stringify";
import type { FastifySerializerCompiler } from "fastify";
import { z } from "zod";

/**
 * Response bodies, as zod schemas: the source of GET /openapi.json, and of the JSON Schema each route's
 * replies are serialized with (serializerCompiler).
 */
export const errorBody = z.object({
  error: z.string().describe("stable machine-readable code, e.g. invalid_event"),
  message: z.string().describe("what is wrong and what to fix"),
  details: z.unknown().optional(),
});
export type ErrorBody = z.infer<typeof errorBody>;

const rejectedItem = z.object({
  index: z.number().int().describe("0-based position in the JSON array, or line in the NDJSON body"),
  error: z.string(),
});

const acceptedBody = z
  .object({
    accepted: z.number().int().describe("events acknowledged by Kafka"),
    rejected: z.array(rejectedItem),
  })
  .meta({
    description: "Kafka has the accepted events",
    examples: [
      { accepted: 1, rejected: [] },
      { accepted: 2, rejected: [{ index: 2, error: "ts is required; adId is required" }] },
    ],
  });

const livenessBody = z.object({ status: z.literal("ok") }).meta({
  description: "the process serves HTTP",
  examples: [{ status: "ok" }],
});

/** Up or down, nothing more: why an engine is down (its address, its error) goes to the server log only. */
const engineStatus = z.object({ status: z.enum(["up", "down"]) });
export type EngineStatus = z.infer<typeof engineStatus>;
const readinessBody = z.object({ status: z.literal("ready"), engines: z.record(z.string(), engineStatus) }).meta({
  description: "every engine this process's role depends on answers",
  examples: [
    { status: "ready", engines: { kafka: { status: "up" }, clickhouse: { status: "up" } } },
    { status: "ready", engines: { kafka: { status: "up" } } },
  ],
});

export const responses = {
  accepted: acceptedBody,
  liveness: livenessBody,
  readiness: readinessBody,
};

/**
 * Replies go through fast-json-stringify (Fastify's fast path) compiled from the zod schema's JSON Schema once
 * per route, rather than a validate-then-stringify per reply. Non-JSON bodies (the GIF, the tag, metrics) are
 * sent as they are and never reach their serializer: a Buffer schema, which JSON Schema cannot express, may be "any".
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema }) =>
  fastJson(
    z.toJSONSchema(schema, { target: "draft-7", io: "output", unrepresentable: "any" }) as Parameters<
      typeof fastJson
    >[0],
  );
