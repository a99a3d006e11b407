import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pixelSignature, signPixelUrl, verifyPixelSignature } from "./pixel-signature.ts";

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
