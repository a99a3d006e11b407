import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { ProducerUnavailableError } from "../kafka/producer.ts";
import type { ErrorBody } from "./schemas.ts";

/** An error the client caused or must react to, with the status and body to answer. */
export class HttpError extends Error {
  override name = "HttpError";
  readonly statusCode: number;
  readonly code: string;
  readonly details: unknown;
  constructor(statusCode: number, code: string, message: string, details?: unknown) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 1;

export function sendUnavailable(reply: FastifyReply, code: string, message: string): FastifyReply {
  return reply
    .code(503)
    .header("retry-after", RETRY_AFTER_SECONDS)
    .send({ error: code, message } satisfies ErrorBody);
}

/** Fastify's own errors for bad input, mapped to stable codes and messages that say what to fix. */
function fromFastify(error: FastifyError, bodyLimit: number): HttpError | undefined {
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new HttpError(
        415,
        "unsupported_media_type",
        "send Content-Type: application/json (or application/x-ndjson for POST /events)",
      );
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HttpError(
        413,
        "payload_too_large",
        `the body is larger than this route's limit of ${bodyLimit} bytes; send fewer or smaller events`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new HttpError(400, "empty_body", "the request body is empty; send a JSON document");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new HttpError(400, "invalid_content_length", error.message);
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new HttpError(400, "malformed_json", `the body is not valid JSON: ${error.message}`);
  }
  if (error instanceof SyntaxError) {
    return new HttpError(400, "malformed_json", `the body is not valid JSON: ${error.message}`);
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.map((issue) => ({
      path: issue.instancePath === "/" ? "event" : issue.instancePath.slice(1).replaceAll("/", "."),
      message: issue.message ?? "invalid",
    }));
    const code = error.validationContext === "querystring" ? "invalid_query" : "invalid_event";
    return new HttpError(400, code, details.map((d) => d.message).join("; "), details);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new HttpError(status, "bad_request", error.message);
  return undefined;
}

/** One place turns every error into `{ error, message, details? }`; bad input is never a 5xx. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProducerUnavailableError) {
      request.log.warn({ code: error.code, err: error.cause ?? error }, "produce not acknowledged");
      return sendUnavailable(
        reply,
        error.code === "PRODUCER_CLOSED" ? "shutting_down" : "kafka_unavailable",
        error.message,
      );
    }
    const known = error instanceof HttpError ? error : fromFastify(error, request.routeOptions.bodyLimit);
    if (known) {
      const body: ErrorBody = { error: known.code, message: known.message };
      if (known.details !== undefined) body.details = known.details;
      if (known.statusCode === 503) reply.header("retry-after", RETRY_AFTER_SECONDS);
      return reply.code(known.statusCode).send(body);
    }
    request.log.error({ err: error }, "unhandled error");
    return reply.code(500).send({ error: "internal_error", message: "unexpected server error" } satisfies ErrorBody);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      error: "not_found",
      message: `no route ${request.method} ${request.url}; see POST /event, POST /events, GET /stats, GET /healthz, GET /readyz, GET /metrics`,
    } satisfies ErrorBody);
  });
}
