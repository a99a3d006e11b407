import { createIsbotFromList, list } from "isbot";

/**
 * What a User-Agent says of its client: a headless browser, a known bot (crawlers, HTTP tools and libraries,
 * monitors: the isbot list), a browser (a `Mozilla/5.0` token, which every browser sends, or Opera Mini's
 * `Opera/9.80`), or something else (an app's own HTTP client, say).
 */
export type UserAgentClass = "headless" | "bot" | "browser" | "other";

/**
 * Headless browsers that say so: Chromium's HeadlessChrome (Puppeteer's and Playwright's by default, Electron's
 * offscreen windows), PhantomJS, SlimerJS, HtmlUnit.
 */
const HEADLESS = /headless|phantomjs|slimerjs|htmlunit/i;
/**
 * isbot's list (https://github.com/omrilotan/isbot, public domain), plus what it misses of the test corpus
 * (src/traffic/corpus/user-agents.tsv): an SEO crawler and Dart's HTTP client.
 */
const isbot = createIsbotFromList([...list, "sitebulb", "dart:io"]);
const BROWSER = /^(Mozilla\/5\.0|Opera\/9\.80) /;

export function classifyUserAgent(userAgent: string): UserAgentClass {
  if (HEADLESS.test(userAgent)) return "headless";
  if (isbot(userAgent)) return "bot";
  return BROWSER.test(userAgent) ? "browser" : "other";
}

/** How many user agents' classes are remembered: the few hundred a day's traffic mostly uses, many times over. */
const CACHE_SIZE = 10_000;
/** Longer ones are classified every time rather than kept: they are rare, and would weigh on the cache. */
const CACHE_MAX_LENGTH = 512;

/**
 * classifyUserAgent, remembered per user-agent string: isbot's pattern is a long regular expression, while user
 * agents repeat heavily. Bounded: once full, the oldest entry makes room for the new one.
 */
export class UserAgentClasses {
  readonly #cache = new Map<string, UserAgentClass>();
  readonly #size: number;

  constructor(size = CACHE_SIZE) {
    this.#size = size;
  }

  of(userAgent: string): UserAgentClass {
    let found = this.#cache.get(userAgent);
    if (found !== undefined) return found;
    found = classifyUserAgent(userAgent);
    if (userAgent.length > CACHE_MAX_LENGTH) return found;
    if (this.#cache.size >= this.#size) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(userAgent, found);
    return found;
  }
}
