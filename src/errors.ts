interface ErrorSpec {
  /** The HTTP status the API answers with. */
  status: number;
  /** Whether sending the same request again later can succeed. */
  retryable: boolean;
  /** Seconds a client should wait before that retry (the Retry-After header), for retryable codes. */
  retryAfterSeconds?: number;
}

/**
 * Every error code the API answers with, in one place: its status and whether a retry helps. Domain code
 * throws `AppError` with a code from here and knows nothing of HTTP; the API's error handler maps it.
 */
export const ERROR_CATALOGUE = {
  // The request itself is wrong: fix it, do not retry.
  invalid_event: { status: 400, retryable: false },
  invalid_query: { status: 400, retryable: false },
  invalid_batch: { status: 400, retryable: false },
  empty_batch: { status: 400, retryable: false },
  all_events_rejected: { status: 400, retryable: false },
  malformed_json: { status: 400, retryable: false },
  empty_body: { status: 400, retryable: false },
  invalid_content_length: { status: 400, retryable: false },
  sender_gone: { status: 400, retryable: false },
  bad_request: { status: 400, retryable: false },
  key_in_url: { status: 400, retryable: false },
  // GET /click: a destination that is not an absolute http(s) URL, or one the key may not send people to.
  invalid_destination: { status: 400, retryable: false },
  // A query ClickHouse stopped at a limit of its answer's size or memory: narrow it, do not retry as it is.
  query_too_large: { status: 400, retryable: false },
  // Keys: who may do what (docs/API.md and docs/OPERATIONS.md, "Keys").
  missing_api_key: { status: 401, retryable: false },
  invalid_api_key: { status: 401, retryable: false },
  wrong_scope: { status: 403, retryable: false },
  origin_not_allowed: { status: 403, retryable: false },
  signature_required: { status: 403, retryable: false },
  invalid_signature: { status: 403, retryable: false },
  signature_expired: { status: 403, retryable: false },
  signature_expiry_too_far: { status: 403, retryable: false },
  ad_not_allowed: { status: 403, retryable: false },
  destination_not_allowed: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  // The body arrived slower than the minimum rate, or its headers or the whole request took too long.
  request_timeout: { status: 408, retryable: true },
  payload_too_large: { status: 413, retryable: false },
  too_many_events: { status: 413, retryable: false },
  // Larger than the key's (or the client IP's) whole bucket: no wait lets it in, a smaller batch would.
  batch_over_rate_limit: { status: 413, retryable: false },
  // An item of a batch beyond what one event can be (its size, values, nesting), or too many unknown fields.
  event_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  // The server cannot take it now: the same request may succeed later.
  rate_limited: { status: 429, retryable: true, retryAfterSeconds: 1 },
  // The client IP (IPv6: its /64) or the key already has as many bodies arriving at once as it may.
  too_many_bodies: { status: 429, retryable: true, retryAfterSeconds: 1 },
  overloaded: { status: 503, retryable: true, retryAfterSeconds: 1 },
  kafka_unavailable: { status: 503, retryable: true, retryAfterSeconds: 1 },
  clickhouse_unavailable: { status: 503, retryable: true, retryAfterSeconds: 1 },
  // A query that ran past QUERY_TIMEOUT_SECONDS: with the size caps, that means ClickHouse is busy.
  query_timeout: { status: 503, retryable: true, retryAfterSeconds: 5 },
  shutting_down: { status: 503, retryable: true, retryAfterSeconds: 1 },
  not_ready: { status: 503, retryable: true, retryAfterSeconds: 5 },
  internal_error: { status: 500, retryable: false },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_CATALOGUE[code];
}

/** An error the client caused or must react to: a catalogue code, a message saying what to do, details. */
export class AppError extends Error {
  override name = "AppError";
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Overrides the catalogue's wait when this error knows better (say, when a rate limit refills). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: ErrorOptions & { details?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(message, options);
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds ?? errorSpec(code).retryAfterSeconds;
  }

  get retryable(): boolean {
    return errorSpec(this.code).retryable;
  }
}
