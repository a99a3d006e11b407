import { type ClickHouseClient, ClickHouseError, type ClickHouseSettings } from "@clickhouse/client";
import type { FastifyReply } from "fastify";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { QuerySlots } from "./query-slots.ts";

/** One read of the query routes: SQL, its bound parameters and settings of its own. */
export interface Statement {
  query: string;
  query_params?: Record<string, unknown>;
  clickhouse_settings?: ClickHouseSettings;
}

/** Runs one statement and answers its rows (JSONCompactEachRow: one array of column values per row). */
export type ReadRows = <Row>(statement: Statement) => Promise<Row[]>;

/**
 * The largest answer a query route may read: more rows (ads of `/stats` without `limit`, points of a series) or
 * bytes and ClickHouse stops the query. It bounds what a query process parses, builds and serializes for one
 * answer, in one go on its event loop: 40-90 ms of CPU at this size (docs/STATS.md, "Limits"). At least
 * MAX_LIMIT, so `limit` always fits.
 */
export const MAX_RESULT_ROWS = 20_000;
export const MAX_RESULT_BYTES = 16 * 1024 * 1024;
/** Queries that may wait for a slot, per slot: a flood is refused, not queued without bound. */
const WAITING_PER_SLOT = 8;

export interface QueryLimits {
  /** ClickHouse's max_execution_time: a longer query is stopped (503 query_timeout). */
  timeoutSeconds: number;
  /** ClickHouse's max_memory_usage per query (400 query_too_large). */
  maxMemoryBytes: number;
  /** Queries in flight per process (QuerySlots). */
  concurrency: number;
  /** How long a query waits for a slot before its 503 overloaded. */
  queueWaitMs: number;
}

export function queryLimits(config: Config): QueryLimits {
  return {
    timeoutSeconds: config.QUERY_TIMEOUT_SECONDS,
    maxMemoryBytes: config.QUERY_MAX_MEMORY_BYTES,
    concurrency: config.QUERY_CONCURRENCY,
    queueWaitMs: config.QUERY_QUEUE_WAIT_MS,
  };
}

/**
 * The settings every query of the query routes carries, in one place. `wait_end_of_query` makes the server
 * buffer the whole answer (at most MAX_RESULT_BYTES) before sending it, so a limit hit midway is an HTTP error
 * with ClickHouse's code, never a 200 cut short; `cancel_http_readonly_queries_on_client_close` stops the query
 * on the server when the client's abort closes the connection (the dev server cannot stop a running statement).
 */
export function limitSettings(limits: QueryLimits): ClickHouseSettings {
  return {
    max_execution_time: limits.timeoutSeconds,
    timeout_overflow_mode: "throw",
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_rows: String(MAX_RESULT_ROWS),
    max_result_bytes: String(MAX_RESULT_BYTES),
    result_overflow_mode: "throw",
    cancel_http_readonly_queries_on_client_close: 1,
    wait_end_of_query: 1,
  };
}

/** The query routes' access to ClickHouse: a reader per request, tied to the request's connection. */
export interface StatsReader {
  /** Reads for one request: its queries take a slot each, and are cancelled once `signal` aborts. */
  forRequest(signal: AbortSignal): ReadRows;
  readonly slots: QuerySlots;
}

export function createStatsReader(client: ClickHouseClient, limits: QueryLimits): StatsReader {
  const settings = limitSettings(limits);
  const slots = new QuerySlots({
    concurrency: limits.concurrency,
    maxWaitMs: limits.queueWaitMs,
    maxWaiting: limits.concurrency * WAITING_PER_SLOT,
  });
  return {
    slots,
    forRequest: (signal) =>
      async function read<Row>(statement: Statement): Promise<Row[]> {
        const release = await slots.acquire(signal);
        try {
          const result = await client.query({
            ...statement,
            clickhouse_settings: { ...statement.clickhouse_settings, ...settings },
            format: "JSONCompactEachRow",
            abort_signal: signal,
          });
          // The slot is held until the whole answer is read: until then the server may still be sending it.
          return await result.json<Row>();
        } catch (error) {
          throw fromClickHouse(error, signal, limits);
        } finally {
          release();
        }
      },
  };
}

/** Reads through `client` as it is, without limits or slots: for tests and benchmarks that call the queries. */
export function plainRows(client: ClickHouseClient): ReadRows {
  return async <Row>(statement: Statement) => {
    const result = await client.query({ ...statement, format: "JSONCompactEachRow" });
    return result.json<Row>();
  };
}

/** A signal that aborts when the client's connection closes before the answer was sent. */
export function connectionClosed(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

const NARROW = "narrow it: a shorter timeWindowMinutes, fewer adId values, or limit";

/**
 * What a failed read answers: a limit ClickHouse enforced becomes a clear error (the answer's size or memory:
 * 400 saying what to narrow; time: 503, as with the size caps only a busy server makes a query that slow); a
 * query ClickHouse refused for another reason stays a ClickHouseError (a bug: 500); no answer at all, a 503.
 */
export function fromClickHouse(error: unknown, signal: AbortSignal | undefined, limits: QueryLimits): Error {
  if (error instanceof AppError) return error;
  if (signal?.aborted) {
    return new AppError("sender_gone", "the client closed the connection; its query was cancelled", { cause: error });
  }
  if (!(error instanceof ClickHouseError)) {
    return new AppError("clickhouse_unavailable", `ClickHouse did not answer: ${(error as Error).message}`, {
      cause: error,
    });
  }
  switch (error.type) {
    case "TOO_MANY_ROWS_OR_BYTES":
    case "TOO_MANY_ROWS":
    case "TOO_MANY_BYTES":
      return new AppError(
        "query_too_large",
        `the answer would hold more than ${MAX_RESULT_ROWS} rows or ${MAX_RESULT_BYTES / 1024 / 1024} MiB; ${NARROW}`,
        { cause: error },
      );
    case "MEMORY_LIMIT_EXCEEDED":
      // The server's total memory is a busy server's problem; the query's own limit is the query's.
      if (/\(total\)/.test(error.message)) {
        return new AppError("overloaded", "ClickHouse is short of memory; retry shortly", { cause: error });
      }
      return new AppError(
        "query_too_large",
        `the query needs more than ${Math.round(limits.maxMemoryBytes / 1024 / 1024)} MiB of ClickHouse memory; ${NARROW}`,
        { cause: error },
      );
    case "TIMEOUT_EXCEEDED":
    case "TOO_SLOW":
      return new AppError(
        "query_timeout",
        `the query ran longer than ${limits.timeoutSeconds} s (ClickHouse is busy); retry later, or narrow it`,
        { cause: error },
      );
    case "TOO_MANY_SIMULTANEOUS_QUERIES":
      return new AppError("overloaded", "ClickHouse runs too many queries; retry shortly", { cause: error });
    default:
      return error;
  }
}
