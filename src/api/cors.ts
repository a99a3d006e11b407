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

function originOption(origins: readonly string[]): FastifyCorsOptions["origin"] {
  if (origins.includes("*")) return "*";
  return origins.length > 0 ? [...origins] : false;
}

/**
 * CORS by route kind: ingest routes answer pages on any origin by default (ads render on many publishers'
 * sites), query routes only the listed origins, other routes none. Never with credentials: keys travel in
 * headers or the URL, not cookies. Preflights are answered before any key check, as browsers send no key.
 */
export async function registerCors(app: FastifyInstance, policy: CorsPolicy): Promise<void> {
  const common = {
    credentials: false,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    allowedHeaders: ["content-type", "authorization", "x-api-key"],
    exposedHeaders: ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
  };
  const byPath = new Map<string, FastifyCorsOptions>();
  for (const path of policy.ingestPaths) {
    byPath.set(path, { ...common, origin: originOption(policy.ingestOrigins), methods: ["GET", "POST"] });
  }
  for (const path of policy.queryPaths) {
    byPath.set(path, { ...common, origin: originOption(policy.queryOrigins), methods: ["GET"] });
  }
  const none: FastifyCorsOptions = { origin: false };
  await app.register(cors, {
    delegator: (request: FastifyRequest, callback) => {
      const query = request.url.indexOf("?");
      callback(null, byPath.get(query === -1 ? request.url : request.url.slice(0, query)) ?? none);
    },
  });
}
