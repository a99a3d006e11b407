import Fastify from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { serializerCompiler } from "../http/schemas.ts";
import { healthRoutes } from "./health.ts";

/** /readyz over probes that count their calls, on a clock the test moves; the server log is kept. */
async function readyzWith(kafka: () => Promise<unknown>) {
  let nowMs = 1_000_000;
  const lines: string[] = [];
  const app = Fastify({ loggerInstance: pino({ level: "info" }, { write: (line: string) => lines.push(line) }) });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  let calls = 0;
  await app.register(healthRoutes, {
    checks: {
      kafka: () => {
        calls++;
        return kafka();
      },
    },
    checkTimeoutMs: 1000,
    cacheMs: 1000,
    now: () => nowMs,
  });
  return {
    readyz: () => app.inject({ url: "/readyz" }),
    calls: () => calls,
    advance: (ms: number) => {
      nowMs += ms;
    },
    log: () => lines.join(""),
  };
}

describe("GET /readyz", () => {
  it("makes one engine check for a flood of probes, and again only once the verdict is a second old", async () => {
    const probe = await readyzWith(() => new Promise((resolve) => setTimeout(resolve, 50)));
    const answers = await Promise.all(Array.from({ length: 50 }, () => probe.readyz()));
    expect(new Set(answers.map((a) => a.statusCode))).toEqual(new Set([200]));
    expect(probe.calls()).toBe(1);
    probe.advance(999);
    await probe.readyz();
    expect(probe.calls()).toBe(1);
    probe.advance(1);
    await Promise.all([probe.readyz(), probe.readyz()]);
    expect(probe.calls()).toBe(2);
  });

  it("names only the engine and down; the engine's address and error go to the server log", async () => {
    const probe = await readyzWith(() => Promise.reject(new Error("connect ECONNREFUSED 10.0.0.7:9092")));
    const answer = await probe.readyz();
    expect(answer.statusCode).toBe(503);
    expect(answer.json()).toEqual({
      error: "not_ready",
      message: "not ready: kafka down",
      details: { engines: { kafka: { status: "down" } } },
    });
    expect(answer.body).not.toContain("10.0.0.7");
    expect(answer.body).not.toContain("ECONNREFUSED");
    expect(probe.log()).toContain("connect ECONNREFUSED 10.0.0.7:9092");
    expect(probe.log()).not.toContain("stack");
  });
});
