import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { SDK_MAX_GZIP_BYTES, SDK_SCRIPT } from "./sdk.ts";

describe("SDK_SCRIPT", () => {
  it(`gzips to at most ${SDK_MAX_GZIP_BYTES} bytes`, () => {
    expect(gzipSync(SDK_SCRIPT).length).toBeLessThanOrEqual(SDK_MAX_GZIP_BYTES);
  });

  it("parses as a script", () => {
    expect(() => new Function(SDK_SCRIPT)).not.toThrow();
  });
});
