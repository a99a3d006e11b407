import type { FastifyBaseLogger, FastifyPluginAsync } from "fastify";
import { AppError } from "../errors.ts";
import { sendError } from "../http/error-responses.ts";
import { type EngineStatus, responses } from "../http/schemas.ts";
import { withTimeout } from "../timeout.ts";

/** A probe of one engine: resolves when it answers, rejects with the reason otherwise. */
export type EngineCheck = () => Promise<unknown>;

export interface HealthOptions {
  checks: Record<string, EngineCheck>;
  /** A probe slower than this counts as down, so /readyz itself answers within a bound. */
  checkTimeoutMs: number;
  /** A verdict is reused for this long after it was reached (and while it is being reached). */
  cacheMs?: number;
  /** The clock, injected by tests. */
  now?: () => number;
}

interface Readiness {
  engines: Record<string, EngineStatus>;
  down: string[];
}

/** The engines' verdict; why one is down goes to the server log only, never to the sender. */
async function probeAll(
  checks: Record<string, EngineCheck>,
  timeoutMs: number,
  log: FastifyBaseLogger,
): Promise<Readiness> {
  const names = Object.keys(checks);
  const engines: Record<string, EngineStatus> = {};
  await Promise.all(
    names.map(async (name) => {
      try {
        await withTimeout((checks[name] as EngineCheck)(), timeoutMs, name);
        engines[name] = { status: "up" };
      } catch (error) {
        engines[name] = { status: "down" };
        log.warn({ engine: name, error: error instanceof Error ? error.message : String(error) }, `${name} down`);
      }
    }),
  );
  const down = names.filter((name) => engines[name]?.status === "down");
  return { engines: Object.fromEntries(names.map((name) => [name, engines[name] as EngineStatus])), down };
}

/**
 * The readiness verdict, single-flight and reused for `cacheMs` once reached: a flood of probes (load balancers,
 * or anyone, as /readyz is public) makes at most one round trip to each engine per interval and process.
 */
function cachedReadiness(
  probe: () => Promise<Readiness>,
  cacheMs: number,
  now: () => number,
): () => Promise<Readiness> {
  let verdict: Promise<Readiness> | undefined;
  let reachedAt = Number.POSITIVE_INFINITY;
  return () => {
    if (verdict && now() - reachedAt < cacheMs) return verdict;
    reachedAt = Number.POSITIVE_INFINITY; // pending: reused until it settles
    const pending = probe();
    verdict = pending;
    void pending.finally(() => {
      if (verdict === pending) reachedAt = now();
    });
    return pending;
  };
}

/** GET /healthz: the process serves HTTP. GET /readyz: every engine this process's role depends on answers. */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (
  app,
  { checks, checkTimeoutMs, cacheMs = 1000, now = Date.now },
) => {
  const tags = ["health"];
  app.get("/healthz", { schema: { tags, summary: "Liveness", response: { 200: responses.liveness } } }, async () => ({
    status: "ok",
  }));

  const readiness = cachedReadiness(() => probeAll(checks, checkTimeoutMs, app.log), cacheMs, now);
  app.get(
    "/readyz",
    {
      schema: {
        tags,
        summary: "Readiness",
        description:
          "One round trip to each engine the process's API_ROLE depends on, each bounded by 1 s: Kafka for " +
          "ingest, ClickHouse for query, both for all. The body names each engine checked and whether it is up. " +
          "The verdict is reused for 1 s, so probes cost the engines at most one round trip a second per process.",
        response: { 200: responses.readiness },
        errors: ["not_ready"],
      },
    },
    async (_request, reply) => {
      const { engines, down } = await readiness();
      if (down.length === 0) return { status: "ready", engines };
      return sendError(
        reply,
        new AppError("not_ready", `not ready: ${down.join(", ")} down`, { details: { engines } }),
      );
    },
  );
};
