import { AppError } from "../errors.ts";

/** The longest destination GET /click takes: beyond it, browsers and proxies start to cut URLs. */
export const MAX_DESTINATION_LENGTH = 2048;

/** The allow-list of a key, or of CLICK_DOMAINS: which hosts a click may be redirected to. */
export class ClickDomains {
  readonly patterns: readonly string[];
  readonly #hosts: ReadonlySet<string>;
  readonly #suffixes: readonly string[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
    this.#hosts = new Set(patterns.filter((p) => !p.startsWith("*.")));
    this.#suffixes = patterns.filter((p) => p.startsWith("*.")).map((p) => p.slice(1));
  }

  /** `hostname` as the URL parser gives it (lower case, IDNs as punycode). */
  allows(hostname: string): boolean {
    return this.#hosts.has(hostname) || this.#suffixes.some((suffix) => hostname.endsWith(suffix));
  }
}

/**
 * The destination of a click, parsed, or the AppError saying why it is none: it must be an absolute http or
 * https URL written out as such (`https://…`), without white space, backslashes or user info. Anything else
 * (`javascript:`, `//evil.example`, `https:evil.example`, `https://shop.example@evil.example`, a relative path) is
 * refused rather than left to a browser's reading of it. The redirect sends the parsed form, so the browser goes
 * where the checks looked.
 */
export function parseDestination(raw: string): URL {
  const refuse = (why: string) =>
    new AppError(
      "invalid_destination",
      `url must be an absolute http or https URL (https://shop.example/…)${why}, got ${JSON.stringify(raw.slice(0, 200))}`,
    );
  if (raw.length > MAX_DESTINATION_LENGTH) throw refuse(` of at most ${MAX_DESTINATION_LENGTH} characters`);
  // No control characters, spaces or backslashes: the URL parser would drop or reinterpret them.
  if (!/^https?:\/\/[^\s\\\p{Cc}]+$/iu.test(raw)) throw refuse("");
  const url = URL.parse(raw);
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") throw refuse("");
  if (url.username !== "" || url.password !== "") throw refuse(" without user info (user@host)");
  return url;
}
