import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { AppError, type ErrorCode, errorSpec } from "../errors.ts";
import type { ErrorBody } from "./schemas.ts";

/** Answers `{ error, message, details? }` with the catalogue's status, and Retry-After when a retry helps. */
export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  const body: ErrorBody = { error: error.code, message: error.message };
  if (error.details !== undefined) body.details = error.details;
  if (error.retryable && error.retryAfterSeconds !== undefined) reply.header("retry-after", error.retryAfterSeconds);
  const { status } = errorSpec(error.code);
  if (status === 401) {
    const challenge = error.code === "invalid_api_key" ? ', error="invalid_token"' : "";
    reply.header("www-authenticate", `Bearer realm="impressions"${challenge}`);
  }
  return reply.code(status).send(body);
}

/** What fromFastify() can answer a request with a body with, before any schema sees it. */
export const BODY_ERRORS = [
  "unsupported_media_type",
  "payload_too_large",
  "empty_body",
  "invalid_content_length",
  "malformed_json",
  "bad_request",
] as const satisfies readonly ErrorCode[];

/** Fastify's own errors for bad input, mapped to stable codes and messages that say what to fix. */
function fromFastify(error: FastifyError, bodyLimit: number): AppError | undefined {
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new AppError(
        "unsupported_media_type",
        "send Content-Type: application/json or text/plain holding JSON (or application/x-ndjson for POST /events)",
      );
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new AppError(
        "payload_too_large",
        `the body is larger than this route's limit of ${bodyLimit} bytes; send fewer or smaller events`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new AppError("empty_body", "the request body is empty; send a JSON document");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new AppError("invalid_content_length", error.message);
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new AppError("malformed_json", `the body is not valid JSON: ${error.message}`);
  }
  if (error instanceof SyntaxError) {
    return new AppError("malformed_json", `the body is not valid JSON: ${error.message}`);
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.map((issue) => ({
      path: issue.instancePath === "/" ? "event" : issue.instancePath.slice(1).replaceAll("/", "."),
      message: issue.message ?? "invalid",
    }));
    const code = error.validationContext === "querystring" ? "invalid_query" : "invalid_event";
    return new AppError(code, details.map((d) => d.message).join("; "), { details });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new AppError("bad_request", error.message);
  return undefined;
}

/**
 * One place turns every error into `{ error, message, details? }`; bad input is never a 5xx. `observe`
 * sees each answered error (for metrics).
 */
export function installErrorHandlers(
  app: FastifyInstance,
  observe?: (request: FastifyRequest, error: AppError) => void,
): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = error instanceof AppError ? error : fromFastify(error, request.routeOptions.bodyLimit);
    if (known) {
      // A 429 or 503 is the API working as meant, and counted in the metrics: under a flood, a warn line with a
      // stack for each would cost more than the answer. One debug line, its cause's message and no stack.
      if (known.retryable) {
        const cause = known.cause instanceof Error ? known.cause.message : undefined;
        request.log.debug({ code: known.code, ...(cause && { cause }) }, known.message);
      }
      observe?.(request, known);
      return sendError(reply, known);
    }
    request.log.error({ err: error }, "unhandled error");
    return sendError(reply, new AppError("internal_error", "unexpected server error"));
  });

  app.setNotFoundHandler((request, reply) => {
    sendError(
      reply,
      new AppError(
        "not_found",
        `no route ${request.method} ${request.url}; see POST /event, POST /events, GET /pixel.gif, GET /click, GET /stats, GET /healthz, GET /readyz, GET /metrics`,
      ),
    );
  });
}

/**
 * What Node reports on a connection before there is a request to answer (Fastify's clientErrorHandler): the
 * headers or the whole request took longer than their timeout, or the request does not parse. Answered in the
 * API's error shape when nothing was sent on the connection yet, then the connection is closed.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  // Node's own test for a response already under way on this connection (its default handler does the same).
  const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !response?.headersSent) {
    const [status, body]: [number, ErrorBody] =
      error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, { error: "request_timeout", message: "the request's headers or body took too long to arrive" }]
        : error.code === "HPE_HEADER_OVERFLOW"
          ? [431, { error: "bad_request", message: "the request's headers are too large" }]
          : [400, { error: "bad_request", message: `the request does not parse as HTTP/1.1 (${error.code})` }];
    const json = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  }
  socket.destroy(error);
}
