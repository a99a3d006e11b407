import { describe, expect, it } from "vitest";
import { isPrefetch } from "./prefetch.ts";

describe("isPrefetch", () => {
  it.each([
    [{ "sec-purpose": "prefetch" }],
    [{ "sec-purpose": "prefetch;prerender" }],
    [{ "sec-purpose": "prefetch;anonymous-client-ip" }],
    [{ purpose: "prefetch" }],
    [{ "x-purpose": "preview" }],
    [{ "x-moz": "prefetch" }],
  ])("takes %j for a prefetch or prerender", (headers) => {
    expect(isPrefetch(headers)).toBe(true);
  });

  it.each([
    [{}],
    [{ "sec-purpose": "prefetched" }],
    [{ purpose: "" }],
    [{ "x-moz": "livebookmarks" }],
    [{ "sec-fetch-dest": "image" }],
  ])("takes %j for a view", (headers) => {
    expect(isPrefetch(headers)).toBe(false);
  });
});
