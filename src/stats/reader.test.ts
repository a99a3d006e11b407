import { ClickHouseError } from "@clickhouse/client";
import { queryBind } from "chdb";
import { describe, expect, it } from "vitest";
import { AppError } from "../errors.ts";
import { fromClickHouse, limitSettings, MAX_RESULT_ROWS, type QueryLimits } from "./reader.ts";

const limits: QueryLimits = {
  timeoutSeconds: 10,
  maxMemoryBytes: 512 * 1024 * 1024,
  concurrency: 4,
  queueWaitMs: 1000,
};

/** The server settings ClickHouse's engine (chdb's) knows, of those named. */
function knownSettings(names: string[]): string[] {
  const rows = queryBind(
    "SELECT name FROM system.settings WHERE name IN {names:Array(String)}",
    { names },
    "JSONEachRow",
  );
  return rows
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { name: string }).name)
    .sort();
}

describe("limitSettings", () => {
  it("are settings ClickHouse knows (wait_end_of_query is a parameter of the HTTP interface)", () => {
    const names = Object.keys(limitSettings(limits)).filter((name) => name !== "wait_end_of_query");
    expect(knownSettings(names)).toEqual([...names].sort());
  });

  it("bound time, memory and the answer, and throw rather than cut the answer short", () => {
    expect(limitSettings(limits)).toMatchObject({
      max_execution_time: 10,
      timeout_overflow_mode: "throw",
      max_memory_usage: String(512 * 1024 * 1024),
      max_result_rows: String(MAX_RESULT_ROWS),
      result_overflow_mode: "throw",
      cancel_http_readonly_queries_on_client_close: 1,
      wait_end_of_query: 1,
    });
  });
});

const clickhouseError = (type: string, message = "limit") => new ClickHouseError({ message, code: "1", type });
const codeOf = (error: unknown) => (error instanceof AppError ? error.code : error);

describe("fromClickHouse", () => {
  it("answers a limit ClickHouse enforced with a code that says what to do", () => {
    const answer = (error: unknown) => codeOf(fromClickHouse(error, undefined, limits));
    expect(answer(clickhouseError("TOO_MANY_ROWS_OR_BYTES"))).toBe("query_too_large");
    expect(answer(clickhouseError("MEMORY_LIMIT_EXCEEDED", "Query memory limit exceeded: would use 1 GiB"))).toBe(
      "query_too_large",
    );
    expect(answer(clickhouseError("MEMORY_LIMIT_EXCEEDED", "Memory limit (total) exceeded"))).toBe("overloaded");
    expect(answer(clickhouseError("TIMEOUT_EXCEEDED"))).toBe("query_timeout");
    expect(answer(clickhouseError("TOO_MANY_SIMULTANEOUS_QUERIES"))).toBe("overloaded");
    expect(answer(new Error("connect ECONNREFUSED"))).toBe("clickhouse_unavailable");
  });

  it("says what to narrow, and keeps any other refusal a ClickHouseError (a bug: 500)", () => {
    const tooLarge = fromClickHouse(clickhouseError("TOO_MANY_ROWS_OR_BYTES"), undefined, limits);
    expect(tooLarge.message).toBe(
      `the answer would hold more than ${MAX_RESULT_ROWS} rows or 16 MiB; narrow it: a shorter timeWindowMinutes, fewer adId values, or limit`,
    );
    const syntax = clickhouseError("SYNTAX_ERROR");
    expect(fromClickHouse(syntax, undefined, limits)).toBe(syntax);
  });

  it("answers sender_gone for whatever failed once the client went away", () => {
    const gone = new AbortController();
    gone.abort();
    expect(codeOf(fromClickHouse(new Error("The user aborted a request."), gone.signal, limits))).toBe("sender_gone");
  });
});
