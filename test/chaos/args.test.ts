import { describe, expect, it } from "vitest";
import { parseChaosArgs } from "./args.ts";

describe("parseChaosArgs", () => {
  it("runs the single-broker chaos without flags", () => {
    expect(parseChaosArgs([])).toEqual({ brokers: 1 });
  });

  it("takes --brokers 1 or 3, as two words or with =", () => {
    expect(parseChaosArgs(["--brokers", "1"])).toEqual({ brokers: 1 });
    expect(parseChaosArgs(["--brokers", "3"])).toEqual({ brokers: 3 });
    expect(parseChaosArgs(["--brokers=3"])).toEqual({ brokers: 3 });
  });

  it("refuses another broker count, naming the flag and the value", () => {
    expect(() => parseChaosArgs(["--brokers", "2"])).toThrow('--brokers must be 1 or 3, not "2"');
    expect(() => parseChaosArgs(["--brokers", "three"])).toThrow('--brokers must be 1 or 3, not "three"');
  });

  it("refuses an unknown flag, a missing value and a stray argument", () => {
    expect(() => parseChaosArgs(["--broker", "3"])).toThrow(/--broker/);
    expect(() => parseChaosArgs(["--brokers"])).toThrow(/--brokers/);
    expect(() => parseChaosArgs(["3"])).toThrow(/3/);
  });
});
