import { QUERY_KEY_PREFIX } from "./keys-file.ts";

const PREFIX = new RegExp(QUERY_KEY_PREFIX, "i");
const PERCENT_ESCAPE = /%([0-9a-f]{2})/gi;
/** A URL encoded more than this many times over is read as holding a key: no sender has a reason to. */
const MAX_DECODINGS = 4;

/** The shortest URL that can hold a query key: any shorter one (`/event`, `/events`) needs no look at all. */
export const MIN_URL_WITH_KEY = QUERY_KEY_PREFIX.length;

/**
 * Whether a request URL (path and query string, as received) holds a query key in any form: under any parameter
 * name or in the path, in any letter case, percent-encoded (even several times over). Query keys are secret and
 * URLs land in access logs, proxies' logs and browser histories, so any URL that holds one is refused whatever
 * the route. Matches the secrets' prefix, not a key of the keys file: no lookup, and a revoked or mistyped key
 * is refused too.
 */
export function urlHoldsQueryKey(url: string): boolean {
  let text = url;
  for (let decodings = 0; decodings <= MAX_DECODINGS; decodings++) {
    if (PREFIX.test(text)) return true;
    if (!text.includes("%")) return false;
    // Byte by byte, so a malformed escape elsewhere in the URL does not hide one (decodeURIComponent would throw).
    const decoded = text.replace(PERCENT_ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (decoded === text) return false;
    text = decoded;
  }
  return true;
}
