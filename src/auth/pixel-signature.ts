import { createHmac, timingSafeEqual } from "node:crypto";

export interface PixelFields {
  id: string;
  adId: string;
  userId: string;
  /** Expiry, epoch seconds. */
  exp: number | string;
}

/**
 * hex(HMAC-SHA256(secret, "id|adId|userId|exp")). "|" cannot occur in ids (see the impression schema), so
 * no two field sets sign the same text.
 */
export function pixelSignature(signingSecretHex: string, { id, adId, userId, exp }: PixelFields): string {
  return createHmac("sha256", Buffer.from(signingSecretHex, "hex"))
    .update(`${id}|${adId}|${userId}|${exp}`)
    .digest("hex");
}

export type PixelVerdict = "ok" | "unsigned" | "expired" | "too_far" | "invalid";

/**
 * The signature is checked before the expiry, so "expired" means a genuine URL that is too old, and "too_far" a
 * genuine one whose `exp` is more than `maxAheadSeconds` away: a URL that would stay valid for longer than the
 * API is willing to accept copies of it.
 */
export function verifyPixelSignature(
  signingSecretHex: string,
  params: { id: string; adId: string; userId: string; exp?: string | undefined; sig?: string | undefined },
  nowSeconds: number,
  maxAheadSeconds: number,
): PixelVerdict {
  const { exp, sig } = params;
  if (exp === undefined || sig === undefined) return "unsigned";
  if (!/^\d+$/.test(exp)) return "invalid";
  const expected = Buffer.from(pixelSignature(signingSecretHex, { ...params, exp }));
  const presented = Buffer.from(sig);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return "invalid";
  if (Number(exp) < nowSeconds) return "expired";
  return Number(exp) > nowSeconds + maxAheadSeconds ? "too_far" : "ok";
}

/** For Node ad servers: the pixel URL of one impression, signed with a signed key's signing secret. */
export function signPixelUrl({
  baseUrl,
  key,
  signingSecret,
  id,
  adId,
  userId,
  expiresInSeconds = 300,
  now = Date.now,
}: {
  /** Where the API is, e.g. https://api.example.com */
  baseUrl: string;
  /** The ingest key's secret. */
  key: string;
  signingSecret: string;
  id: string;
  adId: string;
  userId: string;
  expiresInSeconds?: number;
  now?: () => number;
}): string {
  const exp = Math.floor(now() / 1000) + expiresInSeconds;
  const sig = pixelSignature(signingSecret, { id, adId, userId, exp });
  const query = new URLSearchParams({ id, adId, userId, key, exp: String(exp), sig });
  return `${baseUrl.replace(/\/+$/, "")}/pixel.gif?${query}`;
}
