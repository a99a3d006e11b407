import { hash, timingSafeEqual } from "node:crypto";
import { AdScope } from "./ad-scope.ts";
import { ClickDomains } from "./click-domains.ts";
import type { KeysFile, Scope } from "./keys-file.ts";

/** An active key as the API uses it. */
export interface ApiKey {
  name: string;
  scope: Scope;
  /** Browser origins allowed to send with this key; undefined: any. */
  origins: ReadonlySet<string> | undefined;
  /** Ingest keys: events per second; undefined: no limit. Query keys: requests per second; undefined: the default. */
  rate: number | undefined;
  /** Query keys: the ads it may read; undefined: every ad. */
  ads: AdScope | undefined;
  /** HMAC key (hex) of a signed key: its pixel and click URLs must carry a valid signature. */
  signingSecret: string | undefined;
  /** Ingest keys created with --browser: a request without browser signals is non-browser traffic. */
  browser: boolean;
  /** Ingest keys: where GET /click may send people besides CLICK_DOMAINS; undefined: nowhere else. */
  clickDomains: ClickDomains | undefined;
}

/** The active keys of one version of the keys file. */
export class Keyring {
  readonly #keys: { sha256: Buffer; key: ApiKey }[];

  constructor(file: KeysFile) {
    this.#keys = file.keys
      .filter((k) => k.revokedAt === undefined)
      .map((k) => ({
        sha256: Buffer.from(k.sha256, "hex"),
        key: {
          name: k.name,
          scope: k.scope,
          origins: k.origins && new Set(k.origins),
          rate: k.rate,
          ads: k.ads && new AdScope(k.ads),
          signingSecret: k.signingSecret,
          browser: k.browser === true,
          clickDomains: k.clickDomains && new ClickDomains(k.clickDomains),
        },
      }));
  }

  get activeCount(): number {
    return this.#keys.length;
  }

  /**
   * The key whose secret this is, if active. Compares with every key, so the time taken does not tell which.
   * One-shot `hash()`: a `createHash()` object per request cost the keyed `/event` ~4 µs of CPU, against ~1 µs
   * for the digest itself (docs/BENCHMARKS-ARCHIVE.md).
   */
  authenticate(secret: string): ApiKey | undefined {
    const presented = hash("sha256", secret, "buffer");
    let match: ApiKey | undefined;
    for (const { sha256, key } of this.#keys) {
      if (timingSafeEqual(presented, sha256)) match = key;
    }
    return match;
  }
}
