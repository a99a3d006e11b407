import { z } from "zod";

/**
 * Response bodies. Defined with zod, handed to Fastify as JSON Schema so replies go through
 * fast-json-stringify (Fastify's fast path) rather than a validate-then-stringify per reply.
 */
const errorBody = z.object({
  error: z.string().describe("stable machine-readable code, e.g. invalid_event"),
  message: z.string().describe("what is wrong and what to fix"),
  details: z.unknown().optional(),
});
export type ErrorBody = z.infer<typeof errorBody>;

const rejectedItem = z.object({
  index: z.number().int().describe("0-based position in the JSON array, or line in the NDJSON body"),
  error: z.string(),
});

const acceptedBody = z.object({
  accepted: z.number().int().describe("events acknowledged by Kafka"),
  rejected: z.array(rejectedItem),
});

const livenessBody = z.object({ status: z.literal("ok") });

const engineStatus = z.object({ status: z.enum(["up", "down"]), error: z.string().optional() });
export type EngineStatus = z.infer<typeof engineStatus>;
const readinessBody = z.object({ status: z.literal("ready"), engines: z.record(z.string(), engineStatus) });

const jsonSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { target: "draft-7", io: "output" });

export const responses = {
  accepted: jsonSchema(acceptedBody),
  error: jsonSchema(errorBody),
  liveness: jsonSchema(livenessBody),
  readiness: jsonSchema(readinessBody),
};
