import { describe, expect, it } from "vitest";
import { CUT, describeAnswer, formatTally, is2xx, refused } from "./outcomes.ts";

describe("describeAnswer", () => {
  it("names a JSON error by its status and code, a 2xx by its status, anything else as not JSON", () => {
    expect(describeAnswer(413, '{"error":"too_many_events","message":"…"}')).toBe("413 too_many_events");
    expect(describeAnswer(202, '{"accepted":1,"rejected":[]}')).toBe("202");
    expect(describeAnswer(408, "")).toBe("408 (not JSON)");
    expect(describeAnswer(500, "<html>")).toBe("500 (not JSON)");
    expect(describeAnswer(400, '{"message":"no error field"}')).toBe("400 (not JSON)");
  });
});

describe("refused: an attack request stopped as issue 19 asks", () => {
  it("takes a 4xx or 503 with a JSON error, or a cut connection", () => {
    for (const outcome of ["400 key_in_url", "401 missing_api_key", "413 too_many_events", "503 overloaded", CUT]) {
      expect(refused(outcome), outcome).toBe(true);
    }
  });

  it("not a 2xx, another 5xx, an answer that is no JSON error, a timeout or no end", () => {
    for (const outcome of ["200", "202", "500 internal", "502 bad_gateway", "408 (not JSON)", "timeout"]) {
      expect(refused(outcome), outcome).toBe(false);
    }
    expect(refused("no end 30 s after the attack stopped")).toBe(false);
  });
});

describe("is2xx", () => {
  it("is true for 2xx statuses only, not for a 202 that rejected valid events", () => {
    expect(is2xx("202")).toBe(true);
    expect(is2xx("503 overloaded")).toBe(false);
    expect(is2xx(CUT)).toBe(false);
    expect(is2xx("valid events rejected (202)")).toBe(false);
  });
});

describe("formatTally", () => {
  it("lists outcomes most frequent first, ties by name", () => {
    expect(formatTally({ cut: 2, "413 too_many_events": 4, "400 a": 2 })).toBe(
      "413 too_many_events ×4, 400 a ×2, cut ×2",
    );
    expect(formatTally({})).toBe("none");
  });
});
