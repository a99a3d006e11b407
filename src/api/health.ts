import type { FastifyPluginAsync } from "fastify";
import { AppError } from "../errors.ts";
import { withTimeout } from "../timeout.ts";
import { sendError } from "./errors.ts";
import { type EngineStatus, responses } from "./schemas.ts";

/** A probe of one engine: resolves when it answers, rejects with the reason otherwise. */
export type EngineCheck = () => Promise<unknown>;

export interface HealthOptions {
  checks: Record<string, EngineCheck>;
  /** A probe slower than this counts as down, so /readyz itself answers within a bound. */
  checkTimeoutMs: number;
}

async function probe(name: string, check: EngineCheck, timeoutMs: number): Promise<EngineStatus> {
  try {
    await withTimeout(check(), timeoutMs, name);
    return { status: "up" };
  } catch (error) {
    return { status: "down", error: error instanceof Error ? error.message : String(error) };
  }
}

/** GET /healthz: the process serves HTTP. GET /readyz: every engine this process's role depends on answers. */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { checks, checkTimeoutMs }) => {
  const tags = ["health"];
  app.get("/healthz", { schema: { tags, summary: "Liveness", response: { 200: responses.liveness } } }, async () => ({
    status: "ok",
  }));

  app.get(
    "/readyz",
    {
      schema: {
        tags,
        summary: "Readiness",
        description:
          "One round trip to each engine the process's API_ROLE depends on, each bounded by 1 s: Kafka for " +
          "ingest, ClickHouse for query, both for all. The body names each engine checked.",
        response: { 200: responses.readiness },
        errors: ["not_ready"],
      },
    },
    async (_request, reply) => {
      const names = Object.keys(checks);
      const results = await Promise.all(names.map((name) => probe(name, checks[name] as EngineCheck, checkTimeoutMs)));
      const engines = Object.fromEntries(names.map((name, i) => [name, results[i]]));
      const down = names.filter((_, i) => results[i]?.status === "down");
      if (down.length === 0) return { status: "ready", engines };
      return sendError(
        reply,
        new AppError("not_ready", `not ready: ${down.join(", ")} down`, { details: { engines } }),
      );
    },
  );
};
