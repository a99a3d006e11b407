import { AppError } from "../errors.ts";
import type { ApiKey, Keyring } from "./keyring.ts";
import { verifyPixelSignature } from "./pixel-signature.ts";

/** What a route needs: an ingest key (the pixel and the click redirect also take signed ones), or a query key. */
export type RouteAccess = "ingest" | "pixel" | "click" | "query";

export interface AccessRequest {
  route: RouteAccess;
  /** From `Authorization: Bearer …` or `X-API-Key`. */
  headerKey: string | undefined;
  /** From `?key=` (an array when the parameter is repeated): beacons and pixels cannot set headers. */
  urlKey: string | string[] | undefined;
  /** The page's origin: the Origin header or, for pixels and clicks, the Referer's. */
  origin: string | undefined;
  /** The signed fields of a pixel or a click (its kind and destination too) and its `exp` and `sig`. */
  pixel?: {
    id: string;
    adId: string;
    userId?: string | undefined;
    kind?: string | undefined;
    url?: string | undefined;
    ts?: string | undefined;
    exp?: string | undefined;
    sig?: string | undefined;
  };
  nowSeconds: number;
  /** How far ahead of now a signed pixel's exp may be (PIXEL_MAX_EXPIRY_SECONDS). */
  pixelMaxExpirySeconds: number;
  /** The route reads totals over every ad (/stats/pipeline, /metrics): a key limited to some ads may not. */
  everyAd?: boolean;
}

/**
 * Decides whether a request may use a route: returns its key, or throws the AppError that says why not.
 * Order matters for what the sender learns: a key in a URL of a query route is refused before it is even
 * looked up (it has leaked into access logs either way), then the key, its scope, its ads, its signature, its
 * origins.
 */
export function authorize(keyring: Keyring, request: AccessRequest): ApiKey {
  const { route, headerKey, urlKey } = request;
  if (route === "query" && urlKey !== undefined) {
    throw new AppError(
      "key_in_url",
      "send a query key in the Authorization header, never in the URL; revoke it if it was logged",
    );
  }
  if (Array.isArray(urlKey)) {
    throw new AppError("invalid_query", `key is given ${urlKey.length} times in the URL; give it once`);
  }
  const secret = headerKey ?? urlKey;
  if (secret === undefined) {
    throw new AppError(
      "missing_api_key",
      route === "query"
        ? "send a query key: Authorization: Bearer <key> or X-API-Key"
        : "send an ingest key: Authorization: Bearer <key>, X-API-Key, or ?key= for beacons and pixels",
    );
  }
  const key = keyring.authenticate(secret);
  if (!key) throw new AppError("invalid_api_key", "the API key is unknown or revoked");
  if (key.scope === "query" && headerKey === undefined) {
    throw new AppError("key_in_url", "a query key must never be in a URL; revoke it, it may have been logged");
  }
  const needed = route === "query" ? "query" : "ingest";
  if (key.scope !== needed) {
    throw new AppError("wrong_scope", `this route needs a ${needed} key; key "${key.name}" is a ${key.scope} key`);
  }
  if (request.everyAd && key.ads) {
    throw new AppError(
      "ad_not_allowed",
      `key "${key.name}" may read only ads matching ${key.ads.patterns.join(", ")}; this route covers every ad ` +
        "and needs a query key without --ads",
    );
  }
  const signed = key.signingSecret !== undefined && checkSignature(key, request);
  if (key.origins) {
    const { origin } = request;
    if (origin === undefined ? !signed : !key.origins.has(origin)) {
      throw new AppError(
        "origin_not_allowed",
        origin === undefined
          ? `key "${key.name}" is bound to origins and the request names none (no Origin or Referer)`
          : `key "${key.name}" does not allow origin ${origin}`,
      );
    }
  }
  return key;
}

/**
 * A signed key sends signed pixel and click URLs only: anything else could be forged for any ad with its public
 * key, and a click's signature covers its destination, so no other one can be put in its place.
 */
function checkSignature(key: ApiKey, { route, pixel, nowSeconds, pixelMaxExpirySeconds }: AccessRequest): true {
  if ((route !== "pixel" && route !== "click") || !pixel) {
    throw new AppError(
      "signature_required",
      `key "${key.name}" is a signed key: it sends signed pixel and click URLs only`,
    );
  }
  // The signature does not cover ts: a signed pixel's time is when it arrives, so none can be moved.
  if (pixel.ts !== undefined) {
    throw new AppError("invalid_signature", "a signed pixel URL must not carry ts: its time is when it arrives");
  }
  switch (verifyPixelSignature(key.signingSecret as string, pixel, nowSeconds, pixelMaxExpirySeconds)) {
    case "ok":
      return true;
    case "unsigned":
      throw new AppError("signature_required", `key "${key.name}" is a signed key: the pixel URL needs exp and sig`);
    case "expired":
      throw new AppError("signature_expired", "the signed pixel URL has expired (exp is past)");
    case "too_far":
      throw new AppError(
        "signature_expiry_too_far",
        `exp is more than ${pixelMaxExpirySeconds} s ahead: sign pixel URLs that expire sooner (the API takes exp ` +
          `up to ${pixelMaxExpirySeconds} s from now, PIXEL_MAX_EXPIRY_SECONDS)`,
      );
    case "invalid":
      throw new AppError(
        "invalid_signature",
        route === "click"
          ? "sig does not match id, adId, userId, exp and url"
          : "sig does not match id, adId, userId, exp and kind",
      );
  }
}
