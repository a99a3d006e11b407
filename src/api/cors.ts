import cors, { type FastifyCorsOptions } from "@fastify/cors";
import type { FastifyInstance, FastifyRequest } from "fastify";

export interface CorsPolicy {
  /** Paths of the ingest routes, open to `ingestOrigins`. */
  ingestPaths: readonly string[];
  /** Paths of the query routes, open to `queryOrigins` only. */
  queryPaths: readonly string[];
  ingestOrigins: readonly string[];
  queryOrigins: readonly string[];
}

/** Browsers may cache a preflight this long (Chromium caps it at 2 h). */
export const PREFLIGHT_MAX_AGE_SECONDS = 7200;
const ALLOWED_HEADERS = ["content-type", "authorization", "x-api-key"];
const EXPOSED_HEADERS = ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"];

function originOption(origins: readonly string[]): FastifyCorsOptions["origin"] {
  if (origins.includes("*")) return "*";
  return origins.length > 0 ? [...origins] : false;
}

/** What a path's answers carry for a page on another origin. */
interface PathRule {
  /** Preflights: @fastify/cors's options for the path. */
  preflight: FastifyCorsOptions;
  /** Answers to pages on any origin ("*"), on the listed ones, or none. */
  origins: "*" | ReadonlySet<string> | undefined;
}

/**
 * CORS by route kind: ingest routes answer pages on any origin by default (ads render on many publishers'
 * sites), query routes only the listed origins, other routes none. Never with credentials: keys travel in
 * headers or the URL, not cookies. Preflights are answered before any key check, as browsers send no key.
 *
 * Preflights go through @fastify/cors, in a scope of their own. The answers to the requests themselves get
 * their two or three headers from one hook here: @fastify/cors resolving its options for every request cost
 * /event 2 µs of its ~23 and 8-12% of its throughput, mostly for senders that are not browsers (ad servers,
 * apps), which send no Origin header and get no CORS header now (docs/BENCHMARKS-ARCHIVE.md).
 */
export async function registerCors(app: FastifyInstance, policy: CorsPolicy): Promise<void> {
  const common = {
    credentials: false,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
  };
  const rule = (origins: readonly string[], methods: string[]): PathRule => {
    const option = originOption(origins);
    return {
      preflight: { ...common, origin: option, methods },
      origins: option === "*" ? "*" : option ? new Set(option as string[]) : undefined,
    };
  };
  const byPath = new Map<string, PathRule>();
  for (const path of policy.ingestPaths) byPath.set(path, rule(policy.ingestOrigins, ["GET", "POST"]));
  for (const path of policy.queryPaths) byPath.set(path, rule(policy.queryOrigins, ["GET"]));
  const ruleOf = (request: FastifyRequest) => byPath.get(request.routeOptions.url ?? "");
  const pathRule = (request: FastifyRequest) => {
    const query = request.url.indexOf("?");
    return byPath.get(query === -1 ? request.url : request.url.slice(0, query));
  };

  const exposed = EXPOSED_HEADERS.join(", ");
  app.addHook("onRequest", (request, reply, done) => {
    const origins = request.method === "OPTIONS" ? undefined : ruleOf(request)?.origins;
    if (origins === undefined) return done();
    // The answer depends on the Origin header unless every origin gets the same: say so to caches.
    if (origins !== "*") reply.header("vary", "Origin");
    const origin = request.headers.origin;
    if (origin !== undefined && (origins === "*" || origins.has(origin))) {
      reply.header("access-control-allow-origin", origins === "*" ? "*" : origin);
      reply.header("access-control-expose-headers", exposed);
    }
    done();
  });

  const none: FastifyCorsOptions = { origin: false };
  await app.register(async (preflights) => {
    await preflights.register(cors, {
      delegator: (request: FastifyRequest, callback) => callback(null, pathRule(request)?.preflight ?? none),
    });
  });
}
