import { describe, expect, it } from "vitest";
import { CommandError, parseCommand, parseSince } from "./args.ts";
import { parseEnvelope, reasonMatches } from "./envelope.ts";

const NOW = Date.parse("2026-12-01T12:00:00Z");

describe("npm run dlq's command line", () => {
  it("takes a command and its filters", () => {
    expect(parseCommand(["list"], NOW)).toEqual({
      command: "list",
      since: undefined,
      reason: undefined,
      limit: undefined,
    });
    expect(parseCommand(["replay", "--since", "30m", "--reason", "malformed_json", "--limit", "5"], NOW)).toEqual({
      command: "replay",
      since: NOW - 30 * 60_000,
      reason: "malformed_json",
      limit: 5,
    });
    expect(parseCommand(["show", "--help"], NOW)).toEqual({ command: "help" });
  });

  it.each([
    [[], "no command given"],
    [["purge"], 'unknown command "purge"'],
    [["list", "extra"], 'unexpected argument "extra"'],
    [["list", "--since", "yesterday"], '--since "yesterday" is not a time'],
    [["list", "--limit", "0"], '--limit "0" is not a whole number'],
    [["list", "--limit", "2.5"], '--limit "2.5" is not a whole number'],
    [["list", "--reason", ""], "--reason needs"],
    [["list", "--bogus"], "Unknown option '--bogus'"],
  ])("refuses %j, saying why", (argv, message) => {
    expect(() => parseCommand(argv, NOW)).toThrow(CommandError);
    expect(() => parseCommand(argv, NOW)).toThrow(message);
  });

  it("reads --since as an ISO time, epoch milliseconds or a time ago", () => {
    expect(parseSince("2026-12-01T10:00:00Z", NOW)).toBe(Date.parse("2026-12-01T10:00:00Z"));
    expect(parseSince("2026-12-01", NOW)).toBe(Date.parse("2026-12-01"));
    expect(parseSince("1764583200000", NOW)).toBe(1764583200000);
    expect(parseSince("90s", NOW)).toBe(NOW - 90_000);
    expect(parseSince("24h", NOW)).toBe(NOW - 86_400_000);
    expect(parseSince("7d", NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseSince("12", NOW)).toBeUndefined();
    expect(parseSince("2026-13-45", NOW)).toBeUndefined();
  });
});

describe("a dead letter's envelope", () => {
  const envelope = (fields: Record<string, unknown>) =>
    JSON.stringify({
      reason: "malformed JSON: Unexpected token",
      source: { topic: "impressions", partition: 3, offset: "17" },
      key: "k",
      value: "{not json",
      ...fields,
    });

  it("is read with its code and the time the API accepted the message; older ones get the code from the reason", () => {
    expect(
      parseEnvelope(
        envelope({
          code: "malformed_json",
          source: { topic: "t", partition: 1, offset: "2", timestamp: "1764583200000" },
        }),
      ),
    ).toEqual({
      reason: "malformed JSON: Unexpected token",
      code: "malformed_json",
      source: { topic: "t", partition: 1, offset: "2", timestamp: 1764583200000 },
      key: "k",
      value: "{not json",
    });
    expect(parseEnvelope(envelope({}))).toMatchObject({ code: "malformed_json", source: { timestamp: undefined } });
    expect(parseEnvelope(envelope({ reason: "invalid impression: ts: expected number" }))?.code).toBe(
      "invalid_impression",
    );
    expect(parseEnvelope(envelope({ reason: "empty value", value: null }))).toMatchObject({
      code: "empty_value",
      value: null,
    });
  });

  it("is undefined for anything else", () => {
    for (const raw of ["", "not json", "[]", '{"reason":1}', JSON.stringify({ reason: "r", source: { topic: "t" } })]) {
      expect(parseEnvelope(raw)).toBeUndefined();
    }
  });

  it("matches --reason by code or by a part of the reason in any case", () => {
    const parsed = parseEnvelope(envelope({ code: "malformed_json" }));
    expect(reasonMatches(parsed, "malformed_json")).toBe(true);
    expect(reasonMatches(parsed, "UNEXPECTED token")).toBe(true);
    expect(reasonMatches(parsed, "invalid_impression")).toBe(false);
    expect(reasonMatches(undefined, "malformed")).toBe(false);
  });
});
