import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  onRequestHookHandler,
} from "fastify";
import { type AccessRequest, authorize, type RouteAccess } from "../auth/access.ts";
import { MIN_URL_WITH_KEY, urlHoldsQueryKey } from "../auth/key-in-url.ts";
import type { ApiKey, Keyring } from "../auth/keyring.ts";
import { type RateDecision, RateLimiter } from "../auth/rate-limiter.ts";
import type { Config } from "../config.ts";
import { AppError, type ErrorCode } from "../errors.ts";
import { clientBucketId } from "./client-ip.ts";
import { documentAccess } from "./openapi.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The key the request was let in with; undefined with AUTH=off. */
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
  /** Requests per second per query key without a rate of its own, for the whole app; 0: no limit. */
  queryRatePerKey: number;
  /** Requests per second per client IP on query routes with AUTH=off, for the whole app; 0: no limit. */
  queryRatePerIp: number;
  /** API processes sharing the load: each one allows its share of every rate (docs/API.md, "Rate limits"). */
  processes: number;
  /** How far ahead a signed pixel's exp may be. */
  pixelMaxExpirySeconds: number;
}

export function createGate(config: Config, keys: Gate["keys"]): Gate {
  if (config.AUTH !== "off" && !keys) throw new Error(`AUTH=${config.AUTH} needs the keys file's watcher`);
  return {
    mode: config.AUTH,
    keys,
    limiter: new RateLimiter(),
    perIpRate: config.INGEST_RATE_PER_IP,
    queryRatePerKey: config.QUERY_RATE_PER_KEY,
    queryRatePerIp: config.QUERY_RATE_PER_IP,
    processes: config.API_INSTANCES ?? 1,
    pixelMaxExpirySeconds: config.PIXEL_MAX_EXPIRY_SECONDS,
  };
}

/**
 * An onRequest hook for the whole app, every route and 404s included, keys on or off: a URL that holds a query key
 * in any form is refused (400 key_in_url) before anything else looks at it. A URL too short to hold one, such as
 * `/event` and `/events`, costs one comparison.
 */
export const refuseQueryKeysInUrls: onRequestHookHandler = (request, _reply, done) => {
  const { url } = request;
  if (url.length < MIN_URL_WITH_KEY || !urlHoldsQueryKey(url)) return done();
  const refusal = new AppError(
    "key_in_url",
    "the URL holds a query key (imp_qry_…): send query keys in the Authorization header only, and revoke this " +
      "one: the URL may have been logged",
  );
  done(refusal as unknown as FastifyError);
};

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : authorization;
  }
  const header = request.headers["x-api-key"];
  return typeof header === "string" ? header : undefined;
}

/** The page's origin: Origin, or for an `<img>` pixel or a followed link (which send none) the Referer's. */
function pageOrigin(request: FastifyRequest, route: RouteAccess): string | undefined {
  const origin = request.headers.origin;
  if (origin !== undefined) return origin;
  const referer = request.headers.referer;
  if ((route !== "pixel" && route !== "click") || referer === undefined) return undefined;
  return URL.parse(referer)?.origin;
}

export interface GuardOptions {
  /** The routes read totals over every ad: a key limited to some ads (`ads`) is refused. */
  everyAd?: boolean;
}

/**
 * The onRequest hook of a route group: lets in only requests with a key that may use it; on query routes, also
 * charges the request to its key's rate (or, with AUTH=off, to its client IP's).
 */
function requireAccess(gate: Gate, route: RouteAccess, { everyAd = false }: GuardOptions): onRequestAsyncHookHandler {
  const charge = route === "query" ? queryCharger(gate) : undefined;
  return async (request, reply) => {
    if (gate.mode !== "off") {
      const query = request.query as Record<string, unknown>;
      const urlKey = query.key as string | string[] | undefined;
      const access: AccessRequest = {
        route,
        headerKey: presentedKey(request),
        urlKey,
        origin: pageOrigin(request, route),
        nowSeconds: Math.floor(Date.now() / 1000),
        pixelMaxExpirySeconds: gate.pixelMaxExpirySeconds,
        everyAd,
      };
      if (route === "pixel") access.pixel = query as NonNullable<AccessRequest["pixel"]>;
      // GET /click is a click: its kind is signed, not sent.
      else if (route === "click") access.pixel = { ...(query as NonNullable<AccessRequest["pixel"]>), kind: "click" };
      request.apiKey = authorize((gate.keys as { current(): Keyring }).current(), access);
    }
    charge?.(request, reply);
  };
}

/** What authorize() can refuse a request with, by route (src/auth/access.ts). */
const KEY_ERRORS = ["key_in_url", "missing_api_key", "invalid_api_key", "wrong_scope"] as const;
const SIGNED_ERRORS: readonly ErrorCode[] = [
  ...KEY_ERRORS,
  "invalid_query",
  "signature_required",
  "invalid_signature",
  "signature_expired",
  "signature_expiry_too_far",
  "origin_not_allowed",
];
const ACCESS_ERRORS: Record<RouteAccess, readonly ErrorCode[]> = {
  ingest: [...KEY_ERRORS, "invalid_query", "signature_required", "origin_not_allowed"],
  pixel: SIGNED_ERRORS,
  click: SIGNED_ERRORS,
  query: [...KEY_ERRORS, "rate_limited"],
};

/** Puts a route group behind keys: checked on every request, and stated in each route's OpenAPI entry. */
export function guardRoutes(group: FastifyInstance, gate: Gate, route: RouteAccess, options: GuardOptions = {}): void {
  group.addHook("onRequest", requireAccess(gate, route, options));
  const errors = options.everyAd ? [...ACCESS_ERRORS[route], "ad_not_allowed" as const] : ACCESS_ERRORS[route];
  group.addHook("onRoute", documentAccess(route, errors));
}

/** One bucket a request is charged to: its key's, or its client's (IPv4 address or IPv6 /64). */
interface Charge {
  bucket: string;
  /** This process's share of the rate, per second; may be fractional. */
  rate: number;
  /** The key whose bucket it is; undefined for a client IP's. */
  keyName: string | undefined;
}

/**
 * Checks `amount` against every bucket given before spending any (a refusal by one leaves the others as they
 * were), sets the RateLimit-* headers of the tightest, then spends all or throws: 413 batch_over_rate_limit when
 * the amount is larger than a bucket can ever hold, else 429 rate_limited.
 */
function chargeBuckets(
  limiter: RateLimiter,
  reply: FastifyReply,
  amount: number,
  unit: "events" | "requests",
  first: Charge | undefined,
  second: Charge | undefined,
): void {
  const now = Date.now();
  const a = first && limiter.check(first.bucket, first.rate, amount, now);
  const b = second && limiter.check(second.bucket, second.rate, amount, now);
  const [decision, by] = tightest(a, first, b, second);
  if (!decision || !by) return;
  reply.header("ratelimit-limit", decision.limit);
  reply.header("ratelimit-remaining", decision.remaining);
  reply.header("ratelimit-reset", decision.resetSeconds);
  const who = by.keyName === undefined ? "one client IP" : `key "${by.keyName}"`;
  if (decision.oversize) {
    throw new AppError(
      "batch_over_rate_limit",
      `a batch of ${amount} ${unit} is more than ${who} may send at once: at most ${decision.limit} per request ` +
        "here (2 s of its rate, per API process); send smaller batches",
      { details: { largestBatch: decision.limit } },
    );
  }
  if (!decision.allowed) {
    throw new AppError("rate_limited", `over the rate limit of ${who}; retry in ${decision.retryAfterSeconds} s`, {
      retryAfterSeconds: decision.retryAfterSeconds,
    });
  }
  if (first) limiter.spend(first.bucket, first.rate, amount, now);
  if (second) limiter.spend(second.bucket, second.rate, amount, now);
}

/** The decision that answers: an oversize one, else a refusal, else the one with the fewest units left. */
function tightest(
  a: RateDecision | undefined,
  first: Charge | undefined,
  b: RateDecision | undefined,
  second: Charge | undefined,
): [RateDecision | undefined, Charge | undefined] {
  if (!a) return [b, second];
  if (!b) return [a, first];
  const rank = (d: RateDecision) => (d.oversize ? 0 : d.allowed ? 2 : 1);
  if (rank(a) !== rank(b)) return rank(a) < rank(b) ? [a, first] : [b, second];
  return b.remaining < a.remaining ? [b, second] : [a, first];
}

/** Spends `events` of the request's key's rate and of its client IP's; answers 429 or 413 when either refuses. */
export type ChargeEvents = (request: FastifyRequest, reply: FastifyReply, events: number) => void;

export function rateCharger(gate: Gate): ChargeEvents {
  const perIp = gate.perIpRate === undefined ? undefined : gate.perIpRate / gate.processes;
  return (request, reply, events) => {
    const key = request.apiKey;
    const byKey =
      key?.rate === undefined
        ? undefined
        : { bucket: `key:${key.name}`, rate: key.rate / gate.processes, keyName: key.name };
    const byIp =
      perIp === undefined ? undefined : { bucket: `ip:${clientBucketId(request.ip)}`, rate: perIp, keyName: undefined };
    if (byKey || byIp) chargeBuckets(gate.limiter, reply, events, "events", byKey, byIp);
  };
}

/** Charges one request to a query key's rate (its own, else QUERY_RATE_PER_KEY), or with AUTH=off to its IP's. */
function queryCharger(gate: Gate): (request: FastifyRequest, reply: FastifyReply) => void {
  return (request, reply) => {
    const key = request.apiKey;
    let charge: Charge | undefined;
    if (key) {
      const rate = key.rate ?? gate.queryRatePerKey;
      if (rate > 0) charge = { bucket: `query-key:${key.name}`, rate: rate / gate.processes, keyName: key.name };
    } else if (gate.mode === "off" && gate.queryRatePerIp > 0) {
      const bucket = `query-ip:${clientBucketId(request.ip)}`;
      charge = { bucket, rate: gate.queryRatePerIp / gate.processes, keyName: undefined };
    }
    if (charge) chargeBuckets(gate.limiter, reply, 1, "requests", charge, undefined);
  };
}
