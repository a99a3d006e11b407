import { describe, expect, it } from "vitest";
import { AdScope } from "./ad-scope.ts";

describe("AdScope", () => {
  it("matches ads by their patterns, * standing for any run of characters", () => {
    const scope = new AdScope(["acme-*", "beta", "*:eu"]);
    for (const adId of ["acme-", "acme-1", "acme-a.b:c", "beta", "x:eu", ":eu"])
      expect(scope.matches(adId), adId).toBe(true);
    for (const adId of ["acme", "Acme-1", "xacme-1", "beta-1", "betaa", "x:eu1", "globex-1"]) {
      expect(scope.matches(adId), adId).toBe(false);
    }
  });

  it("reads the characters regular expressions and LIKE give meaning to as themselves", () => {
    const scope = new AdScope(["a.b_c*"]);
    expect(scope.matches("a.b_c-1")).toBe(true);
    expect(scope.matches("aXb_c-1")).toBe(false);
    expect(scope.matches("a.bXc-1")).toBe(false);
    expect(scope.likePatterns).toEqual(["a.b\\_c%"]);
    expect(new AdScope(["acme-*", "*"]).likePatterns).toEqual(["acme-%", "%"]);
  });

  it("refuses an ad outside the scope as ad_not_allowed, naming the key, its patterns and the ad", () => {
    const scope = new AdScope(["acme-*"]);
    expect(() => scope.check("acme", ["acme-1", "acme-2"])).not.toThrow();
    expect(() => scope.check("acme", [])).not.toThrow();
    expect(() => scope.check("acme", ["acme-1", "globex-1"])).toThrow(
      expect.objectContaining({
        code: "ad_not_allowed",
        message: 'key "acme" may read only ads matching acme-*; "globex-1" is not one of them',
      }),
    );
  });
});
