import { STATUS_CODES } from "node:http";
import { z } from "zod";
import { type ErrorCode, errorSpec } from "../errors.ts";
import { errorBody } from "./schemas.ts";

/** A sample body of each code, for the document's examples: a real message names what was wrong. */
const SAMPLES: Record<ErrorCode, { message: string; details?: unknown }> = {
  invalid_event: { message: "adId is required", details: [{ path: "adId", message: "adId is required" }] },
  invalid_query: {
    message: "unknown query parameter: adid",
    details: [{ path: "event", message: "unknown query parameter: adid" }],
  },
  invalid_batch: {
    message: "send a JSON array of events, or NDJSON (one event per line) with Content-Type: application/x-ndjson",
  },
  empty_batch: { message: "the batch has no events" },
  all_events_rejected: {
    message: "no event in the batch is valid; see details.rejected",
    details: { accepted: 0, rejected: [{ index: 0, error: "ts is required" }] },
  },
  malformed_json: {
    message: "the body is not valid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
  },
  empty_body: { message: "the request body is empty; send a JSON document" },
  invalid_content_length: { message: "Request body size did not match Content-Length" },
  sender_gone: { message: "the sender closed the connection before its body was complete" },
  query_too_large: {
    message:
      "the answer would hold more than 20000 rows or 16 MiB; narrow it: a shorter timeWindowMinutes, fewer adId values, or limit",
  },
  bad_request: { message: "the message of any other request error Fastify reports" },
  key_in_url: { message: "send a query key in the Authorization header, never in the URL; revoke it if it was logged" },
  missing_api_key: { message: "send a query key: Authorization: Bearer <key> or X-API-Key" },
  invalid_api_key: { message: "the API key is unknown or revoked" },
  wrong_scope: { message: 'this route needs a query key; key "publisher-a" is an ingest key' },
  origin_not_allowed: { message: 'key "publisher-a" does not allow origin https://other.example' },
  signature_required: { message: 'key "adserver" is a signed key: the pixel URL needs exp and sig' },
  invalid_signature: { message: "sig does not match id, adId, userId, exp and url" },
  invalid_destination: {
    message: "url must be an absolute http or https URL (https://shop.example/…), got javascript:alert(1)",
  },
  destination_not_allowed: {
    message: 'key "publisher-a" may not send clicks to evil.example: add it with --click-domain, or sign the URL',
  },
  signature_expired: { message: "the signed pixel URL has expired (exp is past)" },
  signature_expiry_too_far: {
    message:
      "exp is more than 86400 s ahead: sign pixel URLs that expire sooner (the API takes exp up to 86400 s from now, PIXEL_MAX_EXPIRY_SECONDS)",
  },
  ad_not_allowed: { message: 'key "acme" may read only ads matching acme-*; "globex-1" is not one of them' },
  not_found: { message: "no route GET /stat; see POST /event, POST /events, GET /pixel.gif, GET /stats, …" },
  payload_too_large: {
    message: "the body is larger than this route's limit of 16384 bytes; send fewer or smaller events",
  },
  too_many_events: { message: "a batch holds at most 10000 events, this one has more; split it" },
  batch_over_rate_limit: {
    message:
      'a batch of 10000 events is more than key "publisher-a" may send at once: at most 500 per request here (2 s of its rate, per API process); send smaller batches',
    details: { largestBatch: 500 },
  },
  event_too_large: {
    message:
      "item 3 is larger than 16384 bytes; one event is 4 fields and about 100 bytes (each item at most 16384 bytes, 64 values, 4 nested arrays or objects)",
  },
  request_timeout: {
    message: "the body arrived slower than 4096 bytes/s; send it faster, or a smaller one",
  },
  too_many_bodies: {
    message: "this client (203.0.113.7) already sends 128 bodies at once, the most one client may; retry shortly",
  },
  unsupported_media_type: {
    message:
      "send Content-Type: application/json or text/plain holding JSON (or application/x-ndjson for POST /events)",
  },
  rate_limited: { message: 'over the rate limit of key "publisher-a"; retry in 1 s' },
  overloaded: { message: "the server is overloaded (eventLoopDelay); retry shortly" },
  kafka_unavailable: { message: "Kafka did not acknowledge the write within 1000 ms; retry shortly" },
  clickhouse_unavailable: { message: "ClickHouse did not answer: connect ECONNREFUSED 127.0.0.1:8123" },
  query_timeout: {
    message: "the query ran longer than 10 s (ClickHouse is busy); retry later, or narrow it",
  },
  shutting_down: { message: "the server is shutting down" },
  not_ready: {
    message: "not ready: kafka down",
    details: { engines: { kafka: { status: "down" } } },
  },
  internal_error: { message: "unexpected server error" },
};

interface HeaderDoc {
  type: "integer" | "string";
  description: string;
}

export interface ErrorResponse {
  /** The shared error body, its `error` narrowed to this status's codes, with an example of each. */
  body: z.ZodType;
  headers: Record<string, HeaderDoc>;
}

const RETRY_AFTER: HeaderDoc = { type: "integer", description: "seconds to wait before sending the same request" };
const WWW_AUTHENTICATE: HeaderDoc = {
  type: "string",
  description: 'Bearer realm="impressions", with error="invalid_token" for an unknown or revoked key',
};

/** The responses `codes` make, one per status of the catalogue (src/errors.ts), in status order. */
export function errorResponses(codes: Iterable<ErrorCode>): Record<string, ErrorResponse> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const { status } = errorSpec(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const statuses = [...byStatus.keys()].sort((a, b) => a - b);
  return Object.fromEntries(
    statuses.map((status) => {
      const list = byStatus.get(status) as [ErrorCode, ...ErrorCode[]];
      const body = errorBody.extend({ error: z.enum(list) }).meta({
        description: `${STATUS_CODES[status]}: ${list.join(", ")}`,
        examples: list.map((error) => ({ error, ...SAMPLES[error] })),
      });
      const headers: Record<string, HeaderDoc> = {};
      if (list.some((code) => errorSpec(code).retryable)) headers["retry-after"] = RETRY_AFTER;
      if (status === 401) headers["www-authenticate"] = WWW_AUTHENTICATE;
      return [String(status), { body, headers }];
    }),
  );
}
