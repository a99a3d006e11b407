import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from "fastify";
import { type AccessRequest, authorize, type RouteAccess } from "../auth/access.ts";
import type { ApiKey, Keyring } from "../auth/keyring.ts";
import { type RateDecision, RateLimiter } from "../auth/rate-limiter.ts";
import type { Config } from "../config.ts";
import { AppError, type ErrorCode } from "../errors.ts";
import { documentAccess } from "./openapi.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The key the request was let in with; undefined while the API runs open. */
    apiKey: ApiKey | undefined;
  }
}

export interface Gate {
  mode: Config["AUTH"];
  /** The current keys (the keys file's watcher); required unless mode is off. */
  keys: { current(): Keyring } | undefined;
  limiter: RateLimiter;
  /** Events per second per client IP on ingest routes, for the whole app; undefined: no limit. */
  perIpRate: number | undefined;
  /** API processes sharing the load: each one allows its share of every rate (docs/API.md, "Rate limits"). */
  processes: number;
}

export function createGate(config: Config, keys: Gate["keys"]): Gate {
  if (config.AUTH !== "off" && !keys) throw new Error(`AUTH=${config.AUTH} needs the keys file's watcher`);
  return {
    mode: config.AUTH,
    keys,
    limiter: new RateLimiter(),
    perIpRate: config.INGEST_RATE_PER_IP,
    processes: config.API_INSTANCES ?? 1,
  };
}

/** Keys are required once the file names any key; AUTH=off, or auto with an empty file, runs open. */
function isOpen(gate: Gate): boolean {
  return gate.mode === "off" || (gate.mode === "auto" && !gate.keys?.current().holdsKeys);
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : authorization;
  }
  const header = request.headers["x-api-key"];
  return typeof header === "string" ? header : undefined;
}

/** The page's origin: Origin, or for an `<img>` pixel (which sends none) the Referer's. */
function pageOrigin(request: FastifyRequest, route: RouteAccess): string | undefined {
  const origin = request.headers.origin;
  if (origin !== undefined) return origin;
  const referer = request.headers.referer;
  if (route !== "pixel" || referer === undefined) return undefined;
  return URL.parse(referer)?.origin;
}

/** The onRequest hook of a route group: lets in only requests with a key that may use it. */
function requireAccess(gate: Gate, route: RouteAccess): onRequestAsyncHookHandler {
  return async (request) => {
    if (isOpen(gate)) return;
    const query = request.query as Record<string, unknown>;
    const urlKey = typeof query.key === "string" ? query.key : undefined;
    const access: AccessRequest = {
      route,
      headerKey: presentedKey(request),
      urlKey,
      origin: pageOrigin(request, route),
      nowSeconds: Math.floor(Date.now() / 1000),
    };
    if (route === "pixel") access.pixel = query as NonNullable<AccessRequest["pixel"]>;
    request.apiKey = authorize((gate.keys as { current(): Keyring }).current(), access);
  };
}

/** What authorize() can refuse a request with, by route (src/auth/access.ts). */
const KEY_ERRORS = ["key_in_url", "missing_api_key", "invalid_api_key", "wrong_scope"] as const;
const ACCESS_ERRORS: Record<RouteAccess, readonly ErrorCode[]> = {
  ingest: [...KEY_ERRORS, "signature_required", "origin_not_allowed"],
  pixel: [...KEY_ERRORS, "signature_required", "invalid_signature", "signature_expired", "origin_not_allowed"],
  query: KEY_ERRORS,
};

/** Puts a route group behind keys: checked on every request, and stated in each route's OpenAPI entry. */
export function guardRoutes(group: FastifyInstance, gate: Gate, route: RouteAccess): void {
  group.addHook("onRequest", requireAccess(gate, route));
  group.addHook("onRoute", documentAccess(route, ACCESS_ERRORS[route]));
}

/** Spends `events` of the request's key's rate and of its client IP's; answers 429 when either is out. */
export type ChargeEvents = (request: FastifyRequest, reply: FastifyReply, events: number) => void;

export function rateCharger(gate: Gate): ChargeEvents {
  return (request, reply, events) => {
    const now = Date.now();
    const share = (rate: number) => Math.max(1, rate / gate.processes);
    let decision: RateDecision | undefined;
    const keyRate = request.apiKey?.rate;
    if (keyRate !== undefined) decision = gate.limiter.take(`key:${request.apiKey?.name}`, share(keyRate), events, now);
    if (gate.perIpRate !== undefined && decision?.allowed !== false) {
      const byIp = gate.limiter.take(`ip:${request.ip}`, share(gate.perIpRate), events, now);
      if (!decision || !byIp.allowed || byIp.remaining < decision.remaining) decision = byIp;
    }
    if (!decision) return;
    reply.header("ratelimit-limit", decision.limit);
    reply.header("ratelimit-remaining", decision.remaining);
    reply.header("ratelimit-reset", decision.resetSeconds);
    if (!decision.allowed) {
      throw new AppError("rate_limited", `over the rate limit; retry in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
  };
}
