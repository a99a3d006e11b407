import type { IncomingHttpHeaders } from "node:http";

/** A Structured Field list whose first item is `prefetch` (Chromium: `prefetch`, `prefetch;prerender`). */
const PREFETCH_ITEM = /^\s*prefetch\s*(;|,|$)/i;

/**
 * Whether the browser fetched this ahead of a view that may never happen: a prefetch or a prerender.
 * `Sec-Purpose: prefetch` (Chromium's prefetches and everything a prerendered page loads: `prefetch;prerender`,
 * Firefox's link prefetch), `Purpose: prefetch` (older Chromium), `X-Purpose: preview` (Safari's Top Sites),
 * `X-Moz: prefetch` (older Firefox). Four lookups when none is there.
 */
export function isPrefetch(headers: IncomingHttpHeaders): boolean {
  const secPurpose = headers["sec-purpose"];
  if (typeof secPurpose === "string" && PREFETCH_ITEM.test(secPurpose)) return true;
  const purpose = headers.purpose;
  if (typeof purpose === "string" && PREFETCH_ITEM.test(purpose)) return true;
  const xPurpose = headers["x-purpose"];
  if (typeof xPurpose === "string" && /^\s*(preview|prefetch)\s*$/i.test(xPurpose)) return true;
  const xMoz = headers["x-moz"];
  return typeof xMoz === "string" && /^\s*prefetch\s*$/i.test(xMoz);
}
