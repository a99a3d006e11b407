import Fastify, { type FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { AppError } from "../errors.ts";
import { installErrorHandlers } from "./error-responses.ts";

/** An app whose routes throw what each test says, and the lines its logger wrote, parsed. */
async function appThrowing(errors: Record<string, () => Error>) {
  const lines: string[] = [];
  const logger: FastifyBaseLogger = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
  const app = Fastify({ loggerInstance: logger, disableRequestLogging: true });
  installErrorHandlers(app);
  for (const [path, error] of Object.entries(errors)) {
    app.get(path, async () => {
      throw error();
    });
  }
  const entries = () =>
    lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { stack: string } });
  return { app, lines, entries };
}

describe("the error handler's log", () => {
  it("writes a 429 or a 503 as one debug line with its code and cause, and no stack", async () => {
    const { app, lines, entries } = await appThrowing({
      "/limited": () => new AppError("rate_limited", "over the rate limit of one client IP; retry in 1 s"),
      "/kafka": () =>
        new AppError("kafka_unavailable", "Kafka did not acknowledge the write within 1000 ms; retry shortly", {
          cause: new Error("connect ECONNREFUSED 10.0.0.7:9092"),
        }),
    });
    expect((await app.inject({ url: "/limited" })).statusCode).toBe(429);
    expect((await app.inject({ url: "/kafka" })).statusCode).toBe(503);
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 20,
        code: "rate_limited",
        msg: "over the rate limit of one client IP; retry in 1 s",
      }),
      expect.objectContaining({
        level: 20,
        code: "kafka_unavailable",
        cause: "connect ECONNREFUSED 10.0.0.7:9092",
        msg: "Kafka did not acknowledge the write within 1000 ms; retry shortly",
      }),
    ]);
    expect(lines.join("")).not.toContain("stack");
  });

  it("keeps the stack of a 500, which is a bug", async () => {
    const { app, entries } = await appThrowing({ "/bug": () => new TypeError("x is not a function") });
    expect((await app.inject({ url: "/bug" })).statusCode).toBe(500);
    const [line] = entries();
    expect(line).toMatchObject({ level: 50, msg: "unhandled error" });
    expect(line?.err?.stack).toContain("TypeError: x is not a function");
  });
});
