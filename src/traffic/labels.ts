/**
 * The traffic label every stored impression carries (the `traffic` column): `valid`, `unclassified`, or the first
 * reason for which it is invalid traffic, in the order the rules run (src/traffic/classify.ts). docs/STATS.md
 * says what each means and where its evidence comes from.
 */
export const VALID = "valid";
/** No evidence about the viewer: a server's event without `userAgent` or `ip`. Counted as valid (net). */
export const UNCLASSIFIED = "unclassified";

/** The reasons, in the order they are checked: an event gets the first that fires. */
export const INVALID_REASONS = ["prefetch", "headless", "bot", "non_browser", "ip_range", "activity"] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];
export type TrafficLabel = typeof VALID | typeof UNCLASSIFIED | InvalidReason;

/** What a reason means, for the API's document. */
export const REASON_DESCRIPTIONS: Record<InvalidReason, string> = {
  prefetch:
    "a prefetch or prerender, not a view: Sec-Purpose or Purpose: prefetch, X-Purpose: preview, X-Moz: prefetch",
  headless: "a headless browser: HeadlessChrome in the user agent, or navigator.webdriver reported by the tag",
  bot: "a known crawler, bot or HTTP tool by its user agent (the isbot list)",
  non_browser: "a request without browser signals (Origin, Sec-Fetch-*, a Mozilla/5.0 user agent) on a --browser key",
  ip_range: "an address in the operator's IP ranges file (IVT_IP_RANGES_FILE: data centers, known abusers)",
  activity: "more impressions of one ad to one user, or from one IP, than IVT_ACTIVITY_* allow within their window",
};

/** The labels of the net count: valid, and unclassified (no evidence either way). */
export const NET_LABELS: readonly string[] = [VALID, UNCLASSIFIED];

/** Whether a stored label is an invalid reason: anything but the net labels (a newer API's reason included). */
export function isInvalid(label: string): boolean {
  return !NET_LABELS.includes(label);
}
