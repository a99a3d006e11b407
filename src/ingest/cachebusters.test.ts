import { describe, expect, it } from "vitest";
import { isCachebuster } from "./cachebusters.ts";

const own = new Set(["id", "ts", "userid", "adid", "kind", "key", "exp", "sig"]);
const ignored = (name: string, value: unknown) => isCachebuster(name, value, own);

describe("cachebusters", () => {
  it.each(["cb", "ord", "rnd", "cachebuster", "cachebusting", "_", "CB", "Ord"])(
    "ignores %s whatever its value",
    (name) => {
      for (const value of ["12345678", "x", "", "1764000000000", ["1", "2"]]) expect(ignored(name, value)).toBe(true);
    },
  );

  it.each([
    ["an unsubstituted [CACHEBUSTING]", "[CACHEBUSTING]"],
    ["an unsubstituted [TIMESTAMP]", "[TIMESTAMP]"],
    ["CACHEBUSTING's 8 random digits", "04718264"],
    ["TIMESTAMP as toISOString writes it", "2026-12-01T10:30:15.250Z"],
    ["TIMESTAMP as VAST 4's example writes it", "2016-01-17T8:15:07.127-05"],
    ["TIMESTAMP with a +hh:mm offset, no fraction", "2026-12-01T10:30:15+01:00"],
    ["the same macro repeated", ["12345678", "[CACHEBUSTING]"]],
  ])("ignores any other name holding %s", (_, value) => {
    expect(ignored("t", value)).toBe(true);
    expect(ignored("random", value)).toBe(true);
  });

  it.each([
    ["a typo of adId", "adID", "ad-7"],
    ["a typo of userId holding 8 digits", "userid", "12345678"],
    ["another spelling of userId holding a timestamp", "user_id", "2026-12-01T10:30:15.250Z"],
    ["a typo of ts", "TS", "12345678"],
    ["7 digits", "x", "1234567"],
    ["9 digits", "x", "123456789"],
    ["epoch milliseconds (not a VAST macro)", "x", "1764000000000"],
    ["a date without its offset", "x", "2026-12-01T10:30:15.250"],
    ["a date alone", "x", "2026-12-01"],
    ["another macro", "x", "[ERRORCODE]"],
    ["a lower-case macro", "x", "[cachebusting]"],
    ["a macro inside text", "x", "a[CACHEBUSTING]"],
    ["a repeated parameter with one other value", "x", ["12345678", "campaign"]],
    ["an empty repetition", "x", []],
  ])("keeps %s (so the schema refuses it)", (_, name, value) => {
    expect(ignored(name, value)).toBe(false);
  });
});
