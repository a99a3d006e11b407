import { AppError } from "../errors.ts";

/**
 * The ads a tenant's query key may read, from its `ads` patterns (`*`: any run of ad id characters). Stats
 * queries are filtered to them in SQL (`likePatterns`); a request naming another ad is refused (`check`).
 */
export class AdScope {
  readonly patterns: readonly string[];
  /** The patterns as ClickHouse LIKE patterns: `%` and `_` (and `\`) escaped, `*` as `%`. */
  readonly likePatterns: readonly string[];
  readonly #match: RegExp;

  constructor(patterns: readonly string[]) {
    if (patterns.length === 0) throw new Error("an ad scope needs at least one pattern");
    this.patterns = patterns;
    this.likePatterns = patterns.map((p) => p.replace(/[\\%_]/g, "\\$&").replaceAll("*", "%"));
    const alternatives = patterns.map((p) => p.split("*").map(escapeRegExp).join(".*"));
    this.#match = new RegExp(`^(?:${alternatives.join("|")})$`, "s");
  }

  matches(adId: string): boolean {
    return this.#match.test(adId);
  }

  /** Throws ad_not_allowed for the first ad of `adIds` outside the scope, naming the key. */
  check(keyName: string, adIds: readonly string[]): void {
    const outside = adIds.find((adId) => !this.matches(adId));
    if (outside !== undefined) {
      throw new AppError(
        "ad_not_allowed",
        `key "${keyName}" may read only ads matching ${this.patterns.join(", ")}; "${outside}" is not one of them`,
      );
    }
  }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
