import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pixelSignature, signClickUrl, signPixelUrl, verifyPixelSignature } from "./pixel-signature.ts";

const secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const fields = { id: "imp-1", adId: "ad-7", userId: "u-42", exp: "1764000300" };
// The vector, computed here from the documented construction rather than by the module.
const vector = createHmac("sha256", Buffer.from(secret, "hex")).update("imp-1|ad-7|u-42|1764000300").digest("hex");
const now = 1_764_000_000;
const DAY = 86_400;

describe("pixelSignature", () => {
  it("is hex HMAC-SHA256 of id|adId|userId|exp under the secret's bytes", () => {
    expect(pixelSignature(secret, fields)).toBe(vector);
    expect(pixelSignature(secret, { ...fields, exp: 1764000300 })).toBe(vector);
  });
});

describe("the signed text of kinds, viewers not identified and clicks", () => {
  const hmac = (text: string) => createHmac("sha256", Buffer.from(secret, "hex")).update(text).digest("hex");

  it("adds |kind for a kind other than impression, and |url for a click's destination", () => {
    expect(pixelSignature(secret, { ...fields, kind: "impression" })).toBe(vector);
    expect(pixelSignature(secret, { ...fields, kind: "viewable" })).toBe(hmac("imp-1|ad-7|u-42|1764000300|viewable"));
    expect(pixelSignature(secret, { ...fields, userId: undefined })).toBe(hmac("imp-1|ad-7||1764000300"));
    const url = "https://shop.example/p?a=1|2";
    expect(pixelSignature(secret, { ...fields, kind: "click", url })).toBe(
      hmac(`imp-1|ad-7|u-42|1764000300|click|${url}`),
    );
  });

  it("refuses a signature moved to another kind or another destination", () => {
    const sig = pixelSignature(secret, { ...fields, kind: "click", url: "https://shop.example/" });
    const signed = { ...fields, kind: "click", url: "https://shop.example/", sig };
    expect(verifyPixelSignature(secret, signed, now, DAY)).toBe("ok");
    expect(verifyPixelSignature(secret, { ...signed, url: "https://evil.example/" }, now, DAY)).toBe("invalid");
    expect(verifyPixelSignature(secret, { ...signed, url: undefined }, now, DAY)).toBe("invalid");
    expect(verifyPixelSignature(secret, { ...signed, kind: "viewable" }, now, DAY)).toBe("invalid");
    expect(verifyPixelSignature(secret, { ...fields, sig: vector, kind: "viewable" }, now, DAY)).toBe("invalid");
  });
});

describe("verifyPixelSignature", () => {
  it("accepts the signature of the same fields until exp has passed", () => {
    expect(verifyPixelSignature(secret, { ...fields, sig: vector }, now, DAY)).toBe("ok");
    expect(verifyPixelSignature(secret, { ...fields, sig: vector }, 1_764_000_300, DAY)).toBe("ok");
    expect(verifyPixelSignature(secret, { ...fields, sig: vector }, 1_764_000_301, DAY)).toBe("expired");
  });

  it("refuses any altered field, another secret, a malformed exp or sig", () => {
    for (const altered of [{ id: "imp-2" }, { adId: "ad-8" }, { userId: "u-43" }, { exp: "1764000301" }]) {
      expect(verifyPixelSignature(secret, { ...fields, ...altered, sig: vector }, now, DAY)).toBe("invalid");
    }
    expect(verifyPixelSignature("ff".repeat(32), { ...fields, sig: vector }, now, DAY)).toBe("invalid");
    expect(verifyPixelSignature(secret, { ...fields, exp: "1e10", sig: vector }, now, DAY)).toBe("invalid");
    expect(verifyPixelSignature(secret, { ...fields, exp: "-1", sig: vector }, now, DAY)).toBe("invalid");
    for (const sig of [vector.slice(1), `${vector}0`, vector.toUpperCase(), ""]) {
      expect(verifyPixelSignature(secret, { ...fields, sig }, now, DAY)).toBe("invalid");
    }
  });

  it("refuses a genuine signature whose exp is further ahead than the most the API accepts", () => {
    const later = { ...fields, exp: String(now + DAY + 1) };
    const sig = pixelSignature(secret, later);
    expect(verifyPixelSignature(secret, { ...later, sig }, now, DAY)).toBe("too_far");
    expect(verifyPixelSignature(secret, { ...later, sig }, now + 1, DAY)).toBe("ok");
    expect(verifyPixelSignature(secret, { ...later, sig }, now, DAY + 1)).toBe("ok");
  });

  it("calls a URL without exp or sig unsigned", () => {
    expect(verifyPixelSignature(secret, { ...fields, exp: undefined, sig: vector }, now, DAY)).toBe("unsigned");
    expect(verifyPixelSignature(secret, fields, now, DAY)).toBe("unsigned");
  });
});

describe("signPixelUrl", () => {
  it("builds the pixel URL with every field, the key, exp and a signature the API verifies", () => {
    const url = new URL(
      signPixelUrl({
        baseUrl: "https://api.example.com/",
        key: "imp_ing_abc",
        signingSecret: secret,
        id: "imp:1",
        adId: "ad-7",
        userId: "u-42",
        now: () => now * 1000 + 999,
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe("https://api.example.com/pixel.gif");
    expect(url.search).toContain("id=imp%3A1&adId=ad-7&userId=u-42&key=imp_ing_abc&exp=1764000300&sig=");
    const params = Object.fromEntries(url.searchParams);
    expect(verifyPixelSignature(secret, { id: "imp:1", adId: "ad-7", userId: "u-42", ...params }, now, DAY)).toBe("ok");
    expect(verifyPixelSignature(secret, { id: "imp:1", adId: "ad-7", userId: "u-42", ...params }, now + 301, DAY)).toBe(
      "expired",
    );
  });
});

describe("signed URLs of other kinds and of clicks", () => {
  const common = {
    baseUrl: "https://api.example.com",
    key: "imp_ing_abc",
    signingSecret: secret,
    id: "imp-1",
    adId: "ad-7",
    now: () => now * 1000,
  };

  it("signs a pixel's kind, and a viewer not identified, so the API verifies what the URL carries", () => {
    const url = new URL(signPixelUrl({ ...common, kind: "complete" }));
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({ id: "imp-1", adId: "ad-7", kind: "complete" });
    expect(params.userId).toBeUndefined();
    expect(verifyPixelSignature(secret, params as never, now, DAY)).toBe("ok");
  });

  it("signs a click's destination without a kind parameter: /click is a click", () => {
    const url = new URL(signClickUrl({ ...common, userId: "u-42", url: "https://shop.example/a?b=c&d=e" }));
    expect(url.pathname).toBe("/click");
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({ url: "https://shop.example/a?b=c&d=e", userId: "u-42" });
    expect(params.kind).toBeUndefined();
    expect(verifyPixelSignature(secret, { ...params, kind: "click" } as never, now, DAY)).toBe("ok");
  });
});
