import { describe, expect, it } from "vitest";
import { type AccessRequest, authorize } from "./access.ts";
import { Keyring } from "./keyring.ts";
import { hashSecret, type KeysFile } from "./keys-file.ts";
import { pixelSignature } from "./pixel-signature.ts";

const createdAt = "2026-11-24T10:00:00.000Z";
const signingSecret = "5e".repeat(32);
const file: KeysFile = {
  version: 1,
  keys: [
    { name: "open-ingest", scope: "ingest", sha256: hashSecret("ing-open"), createdAt },
    { name: "site", scope: "ingest", sha256: hashSecret("ing-site"), createdAt, origins: ["https://a.example"] },
    { name: "adserver", scope: "ingest", sha256: hashSecret("ing-signed"), createdAt, signingSecret },
    {
      name: "site-signed",
      scope: "ingest",
      sha256: hashSecret("ing-site-signed"),
      createdAt,
      origins: ["https://a.example"],
      signingSecret,
    },
    { name: "dash", scope: "query", sha256: hashSecret("qry"), createdAt },
    { name: "acme", scope: "query", sha256: hashSecret("qry-acme"), createdAt, ads: ["acme-*"] },
    { name: "gone", scope: "ingest", sha256: hashSecret("ing-gone"), createdAt, revokedAt: createdAt },
  ],
};
const keyring = new Keyring(file);
const NOW = 1_800_000_000;
const DAY = 86_400;
const fields = { id: "imp-1", adId: "ad-1", userId: "u-1" };
const signedPixel = (exp = NOW + 60) => ({
  ...fields,
  exp: String(exp),
  sig: pixelSignature(signingSecret, { ...fields, exp }),
});

function decide(request: Partial<AccessRequest>) {
  try {
    return authorize(keyring, {
      route: "ingest",
      headerKey: undefined,
      urlKey: undefined,
      origin: undefined,
      nowSeconds: NOW,
      pixelMaxExpirySeconds: DAY,
      ...request,
    }).name;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

describe("authorize", () => {
  it("lets a key of the route's scope in, from a header or, for ingest, the URL", () => {
    expect(decide({ headerKey: "ing-open" })).toBe("open-ingest");
    expect(decide({ urlKey: "ing-open", route: "pixel", pixel: fields })).toBe("open-ingest");
    expect(decide({ route: "query", headerKey: "qry" })).toBe("dash");
  });

  it("answers missing_api_key without a key and invalid_api_key for an unknown or revoked one", () => {
    expect(decide({})).toBe("missing_api_key");
    expect(decide({ route: "query" })).toBe("missing_api_key");
    expect(decide({ headerKey: "nope" })).toBe("invalid_api_key");
    expect(decide({ headerKey: "ing-gone" })).toBe("invalid_api_key");
  });

  it("answers wrong_scope for an ingest key on a query route and the other way round", () => {
    expect(decide({ route: "query", headerKey: "ing-open" })).toBe("wrong_scope");
    expect(decide({ headerKey: "qry" })).toBe("wrong_scope");
  });

  it("refuses any key in the URL of a query route, and a query key in any URL, as key_in_url", () => {
    expect(decide({ route: "query", urlKey: "qry" })).toBe("key_in_url");
    expect(decide({ route: "query", urlKey: "whatever", headerKey: "qry" })).toBe("key_in_url");
    expect(decide({ urlKey: "qry" })).toBe("key_in_url");
    expect(decide({ route: "query", urlKey: ["qry", "qry"], headerKey: "qry" })).toBe("key_in_url");
  });

  it("refuses a key given more than once in the URL of an ingest route", () => {
    expect(decide({ route: "pixel", urlKey: ["ing-open", "ing-open"], pixel: fields })).toBe("invalid_query");
  });

  it("lets a key limited to some ads read stats, but not routes that cover every ad", () => {
    expect(decide({ route: "query", headerKey: "qry-acme" })).toBe("acme");
    expect(decide({ route: "query", headerKey: "qry-acme", everyAd: true })).toBe("ad_not_allowed");
    expect(decide({ route: "query", headerKey: "qry", everyAd: true })).toBe("dash");
  });

  it("lets a key bound to origins in from one of them only, and not without an origin", () => {
    expect(decide({ headerKey: "ing-site", origin: "https://a.example" })).toBe("site");
    expect(decide({ headerKey: "ing-site", origin: "https://b.example" })).toBe("origin_not_allowed");
    expect(decide({ headerKey: "ing-site" })).toBe("origin_not_allowed");
    expect(decide({ headerKey: "ing-open", origin: "https://anything.example" })).toBe("open-ingest");
  });

  it("a signed key sends signed pixels only: valid in, unsigned, altered, expired and too long-lived out", () => {
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: signedPixel() })).toBe("adserver");
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: fields })).toBe("signature_required");
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: { ...signedPixel(), adId: "ad-2" } })).toBe(
      "invalid_signature",
    );
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: { ...signedPixel(), exp: String(NOW + 99) } })).toBe(
      "invalid_signature",
    );
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: signedPixel(NOW - 1) })).toBe("signature_expired");
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: signedPixel(NOW + DAY) })).toBe("adserver");
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: signedPixel(NOW + DAY + 1) })).toBe(
      "signature_expiry_too_far",
    );
    expect(decide({ route: "pixel", urlKey: "ing-signed", pixel: { ...signedPixel(), ts: "1799999999000" } })).toBe(
      "invalid_signature",
    );
    expect(decide({ route: "ingest", headerKey: "ing-signed" })).toBe("signature_required");
  });

  it("a signed pixel of a key bound to origins needs no origin, but a wrong one is still refused", () => {
    expect(decide({ route: "pixel", urlKey: "ing-site-signed", pixel: signedPixel() })).toBe("site-signed");
    expect(
      decide({ route: "pixel", urlKey: "ing-site-signed", pixel: signedPixel(), origin: "https://b.example" }),
    ).toBe("origin_not_allowed");
  });
});
