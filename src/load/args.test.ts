import { describe, expect, it } from "vitest";
import { parseLoadArgs, UsageError } from "./args.ts";

const options = (...argv: string[]) => {
  const parsed = parseLoadArgs(argv);
  if (parsed.help) throw new Error("help");
  return parsed.options;
};
const error = (...argv: string[]) => {
  try {
    parseLoadArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
};

describe("npm run load flags", () => {
  it("has the documented defaults", () => {
    expect(options()).toEqual({
      url: "http://127.0.0.1:3000",
      route: "event",
      batch: 1,
      rate: undefined,
      durationMs: 10_000,
      events: undefined,
      concurrency: 10,
      duplicates: 0,
      late: 0,
      invalid: 0,
      ads: 10,
      users: 1000,
      key: undefined,
      json: false,
    });
    expect(options("--route", "events").batch).toBe(100);
  });

  it("reads every flag", () => {
    const o = options(
      ...["--url", "http://localhost:4000/", "--route", "events", "--batch", "50", "--rate", "250.5"],
      ...["--events", "1000", "--concurrency", "4", "--duplicates", "0.1", "--late", "0.2", "--invalid", ".05"],
      ...["--ads", "7", "--users", "20", "--key", "imp_ing_x", "--json"],
    );
    expect(o).toMatchObject({ url: "http://localhost:4000", route: "events", batch: 50, rate: 250.5, events: 1000 });
    expect(o).toMatchObject({ concurrency: 4, duplicates: 0.1, late: 0.2, invalid: 0.05, ads: 7, users: 20 });
    expect(o).toMatchObject({ key: "imp_ing_x", json: true, durationMs: Number.POSITIVE_INFINITY });
    expect(options("--duration", "2.5").durationMs).toBe(2500);
    expect(parseLoadArgs(["--help"])).toEqual({ help: true });
  });

  it("names the flag that is wrong", () => {
    expect(error("--rate", "fast")).toBe("--rate must be a number above 0");
    expect(error("--rate", "0")).toBe("--rate must be a number above 0");
    expect(error("--concurrency", "1.5")).toBe("--concurrency must be a whole number from 1 to 10000");
    expect(error("--events", "-3")).toMatch(/--events/);
    expect(error("--duplicates", "10")).toBe("--duplicates must be a share from 0 to 1, e.g. 0.05");
    expect(error("--route", "stats")).toBe("--route must be one of event, events, pixel");
    expect(error("--url", "localhost:3000")).toMatch(/^--url must be an http/);
    expect(error("--key", "")).toBe("--key must not be empty");
    expect(error("--users", "")).toMatch(/^--users/);
  });

  it("refuses unknown flags, positionals, missing values and contradictions", () => {
    expect(error("--seed", "1")).toMatch(/Unknown option '--seed'/);
    expect(error("extra")).toMatch(/Unexpected argument 'extra'/);
    expect(error("--rate")).toMatch(/--rate/);
    expect(error("--batch", "10")).toBe("--batch is only for --route events");
    expect(error("--duration", "5", "--events", "10")).toBe("give --duration or --events, not both");
    expect(error("--duplicates", "0.6", "--invalid", "0.5")).toBe(
      "--duplicates and --invalid together must not exceed 1",
    );
  });

  it("runs until stopped when open-ended and neither --duration nor --events is given", () => {
    const parsed = parseLoadArgs([], { openEnded: true });
    expect(parsed.help === false && parsed.options.durationMs).toBe(Number.POSITIVE_INFINITY);
  });
});
