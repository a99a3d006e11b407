import { createHmac, timingSafeEqual } from "node:crypto";

/** What a signed URL vouches for: the event's fields, its expiry and, for a click, where it sends the person. */
export interface PixelFields {
  id: string;
  adId: string;
  /** Empty or absent: a viewer not identified. */
  userId?: string | undefined;
  /** Expiry, epoch seconds. */
  exp: number | string;
  /** The event's kind; absent or `impression` signs what impression pixels always signed. */
  kind?: string | undefined;
  /** GET /click only: the destination, exactly as sent. */
  url?: string | undefined;
}

/**
 * The signed text: `id|adId|userId|exp`, then `|kind` for a kind other than impression, then `|url` for a click's
 * destination. "|" cannot occur in ids or kinds and the destination comes last, so no two field sets sign the
 * same text, and an impression pixel's text is what it was before kinds existed.
 */
export function signedText({ id, adId, userId, exp, kind, url }: PixelFields): string {
  const text = `${id}|${adId}|${userId ?? ""}|${exp}`;
  const withKind = kind === undefined || kind === "impression" ? text : `${text}|${kind}`;
  return url === undefined ? withKind : `${withKind}|${url}`;
}

/** hex(HMAC-SHA256(secret, signedText(fields))). */
export function pixelSignature(signingSecretHex: string, fields: PixelFields): string {
  return createHmac("sha256", Buffer.from(signingSecretHex, "hex")).update(signedText(fields)).digest("hex");
}

export type PixelVerdict = "ok" | "unsigned" | "expired" | "too_far" | "invalid";

/**
 * The signature is checked before the expiry, so "expired" means a genuine URL that is too old, and "too_far" a
 * genuine one whose `exp` is more than `maxAheadSeconds` away: a URL that would stay valid for longer than the
 * API is willing to accept copies of it.
 */
export function verifyPixelSignature(
  signingSecretHex: string,
  params: Omit<PixelFields, "exp"> & { exp?: string | undefined; sig?: string | undefined },
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

interface SignedUrlOptions {
  /** Where the API is, e.g. https://api.example.com */
  baseUrl: string;
  /** The ingest key's secret. */
  key: string;
  signingSecret: string;
  id: string;
  adId: string;
  /** Leave it out for a viewer not identified. */
  userId?: string;
  expiresInSeconds?: number;
  now?: () => number;
}

/** The URL of `path` with the event's fields, `params`, the key, `exp` and the signature of `signed`. */
function signedUrl(
  path: string,
  options: SignedUrlOptions,
  signed: { kind?: string; url?: string },
  params: Record<string, string>,
): string {
  const { baseUrl, key, signingSecret, id, adId, userId, expiresInSeconds = 300, now = Date.now } = options;
  const exp = Math.floor(now() / 1000) + expiresInSeconds;
  const sig = pixelSignature(signingSecret, { id, adId, userId, exp, ...signed });
  const query = new URLSearchParams({ id, adId, ...(userId !== undefined && { userId }), ...params, key });
  query.set("exp", String(exp));
  query.set("sig", sig);
  return `${baseUrl.replace(/\/+$/, "")}${path}?${query}`;
}

/** For Node ad servers: the pixel URL of one event (an impression unless `kind` says otherwise), signed. */
export function signPixelUrl(options: SignedUrlOptions & { kind?: string }): string {
  const { kind, ...rest } = options;
  const extra: Record<string, string> = kind === undefined ? {} : { kind };
  return signedUrl("/pixel.gif", rest, extra, extra);
}

/** For Node ad servers: the GET /click URL of one impression's click, signed with its destination `url`. */
export function signClickUrl(options: SignedUrlOptions & { url: string }): string {
  const { url, ...rest } = options;
  return signedUrl("/click", rest, { kind: "click", url }, { url });
}
