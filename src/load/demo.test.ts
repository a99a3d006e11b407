import { describe, expect, it } from "vitest";
import { UsageError } from "./args.ts";
import { demoOptions, isLocal, queryApiUrl } from "./demo.ts";

describe("npm run demo", () => {
  it("feeds 200 events/s with some duplicates, late and invalid events until Ctrl-C", () => {
    expect(demoOptions([])).toMatchObject({
      url: "http://127.0.0.1:3000",
      rate: 200,
      duplicates: 0.05,
      late: 0.02,
      invalid: 0.01,
      durationMs: Number.POSITIVE_INFINITY,
    });
  });

  it("takes the load generator's flags, which win over its defaults", () => {
    expect(demoOptions(["--rate", "50", "--key", "k", "--duration", "30"])).toMatchObject({
      rate: 50,
      key: "k",
      durationMs: 30_000,
    });
    expect(() => demoOptions(["--rate", "x"])).toThrow(UsageError);
    expect(demoOptions(["--help"])).toBe("help");
  });

  it("shows the dashboard of the query API: the events' host on QUERY_PORT", () => {
    expect(queryApiUrl("http://127.0.0.1:3000")).toBe("http://127.0.0.1:3001");
    expect(queryApiUrl("http://localhost:3000/", "4001")).toBe("http://localhost:4001");
  });

  it("starts a stack only for a local URL", () => {
    expect(isLocal("http://127.0.0.1:3000")).toBe(true);
    expect(isLocal("http://localhost:3000")).toBe(true);
    expect(isLocal("https://api.example.com")).toBe(false);
  });
});
