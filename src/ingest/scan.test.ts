import { describe, expect, it } from "vitest";
import { seededRng } from "../load/random.ts";
import {
  BATCH_MAX_UNKNOWN_FIELDS,
  BATCH_VALUES_PER_ITEM,
  BatchScan,
  ITEM_MAX_NESTED,
  ITEM_MAX_VALUES,
  type ScanLimits,
} from "./scan.ts";

const limits: ScanLimits = { maxItems: 5, maxItemBytes: 200 };
const event = (n: number) => JSON.stringify({ id: `e-${n}`, ts: 1764000000000, userId: "u-1", adId: "ad-1" });

/** Scans `body` in chunks of `size` bytes (every size from 1 up finds state kept wrong across chunks). */
function scan(format: "json" | "ndjson", body: string, size = 1 << 16, scanLimits = limits): BatchScan {
  const bytes = Buffer.from(body);
  const scanner = new BatchScan(format, scanLimits);
  for (let at = 0; at < bytes.length; at += size) scanner.push(bytes.subarray(at, at + size));
  return scanner;
}

/** The error `scan` throws, or undefined. */
function refusal(format: "json" | "ndjson", body: string, size?: number, scanLimits?: ScanLimits) {
  try {
    scan(format, body, size, scanLimits);
    return undefined;
  } catch (error) {
    return error as { code: string; message: string };
  }
}

describe("BatchScan, JSON array", () => {
  it("counts the items of an array, whatever the chunk boundaries", () => {
    const body = `[${[1, 2, 3].map(event).join(",")}]`;
    for (let size = 1; size <= body.length; size++) expect(scan("json", body, size).items).toBe(3);
  });

  it("counts no item in [] and [ ], and any value as an item", () => {
    expect(scan("json", "[]").items).toBe(0);
    expect(scan("json", " [ \n ] \n").items).toBe(0);
    expect(scan("json", '[0, "x", null, [], {}]').items).toBe(5);
  });

  it("never takes a comma, bracket, brace, colon or newline inside a string for structure", () => {
    const tricky = JSON.stringify({ id: 'a,b]c[d{e}f:g\nh"i\\', ts: 1, userId: "\\\\", adId: "\\u0022]," });
    const body = `[${tricky},${tricky}]`;
    for (let size = 1; size <= body.length; size++) expect(scan("json", body, size).items).toBe(2);
  });

  it("follows nesting: commas inside an item's arrays and objects do not end it", () => {
    expect(scan("json", '[{"a":[1,2,{"b":[3,4]}]},[5,6]]').items).toBe(2);
  });

  it("refuses the item past BATCH_MAX_EVENTS with 413 too_many_events, before the rest of the body", () => {
    const bomb = `[${"0,".repeat(1_000_000)}0]`;
    const scanner = new BatchScan("json", limits);
    // The first 13 bytes hold the 6th comma.
    expect(() => scanner.push(Buffer.from(bomb.slice(0, 13)))).toThrow(
      expect.objectContaining({ code: "too_many_events" }),
    );
    expect(refusal("json", `[${Array(6).fill("{}").join(",")}]`)).toMatchObject({ code: "too_many_events" });
    expect(refusal("json", `[${Array(5).fill("{}").join(",")}]`)).toBeUndefined();
  });

  it("refuses an item larger than the limit with 413 event_too_large, naming it", () => {
    const big = JSON.stringify({ id: "x".repeat(200) });
    for (const size of [7, 1 << 16]) {
      expect(refusal("json", `[${event(1)},${big}]`, size)).toMatchObject({
        code: "event_too_large",
        message: expect.stringMatching(/^item 1 is larger than 200 bytes/),
      });
    }
    // Without any separator: the limit holds at the end of each chunk.
    expect(refusal("json", `[${"[".repeat(300)}`, 16)).toMatchObject({ code: "event_too_large" });
  });

  it("refuses an item with too many values, or nested too deep, and counts nested keys' values too", () => {
    const wide = `[[${Array(ITEM_MAX_VALUES + 2)
      .fill(0)
      .join(",")}]]`;
    expect(refusal("json", wide, undefined, { maxItems: 5, maxItemBytes: 1_000 })).toMatchObject({
      code: "event_too_large",
      message: expect.stringContaining(`more than ${ITEM_MAX_VALUES} values`),
    });
    const deep = `[${"[".repeat(ITEM_MAX_NESTED + 2)}${"]".repeat(ITEM_MAX_NESTED + 2)}]`;
    expect(refusal("json", deep)).toMatchObject({ message: expect.stringContaining("nests more than") });
    const allowed = `[${"[".repeat(ITEM_MAX_NESTED + 1)}${"]".repeat(ITEM_MAX_NESTED + 1)}]`;
    expect(refusal("json", allowed)).toBeUndefined();
  });

  it("refuses a batch whose items hold more values together than BATCH_VALUES_PER_ITEM per event allowed", () => {
    const roomy = { maxItems: 4, maxItemBytes: 10_000 };
    const item = (values: number) =>
      `[${Array(values + 1)
        .fill(0)
        .join(",")}]`;
    const full = Array(4).fill(item(BATCH_VALUES_PER_ITEM)).join(",");
    expect(refusal("json", `[${full}]`, undefined, roomy)).toBeUndefined();
    // Some items may hold more, as long as the batch does not.
    const uneven = [item(40), item(8), item(8), item(8)].join(",");
    expect(refusal("json", `[${uneven}]`, undefined, roomy)).toBeUndefined();
    expect(refusal("json", `[${full},${item(1)}]`, undefined, { maxItems: 5, maxItemBytes: 10_000 })).toBe(undefined);
    const over = [item(40), item(40), item(8), item(8)].join(",");
    expect(refusal("json", `[${over}]`, undefined, roomy)).toMatchObject({
      code: "event_too_large",
      message: expect.stringContaining(`more than ${4 * BATCH_VALUES_PER_ITEM} values together`),
    });
  });

  it("lets a batch name a few unknown fields, refuses many distinct ones, and never counts the impression's", () => {
    const typo = Array(5).fill('{"id":"a","adID":"b","ts":1,"userId":"c"}').join(",");
    expect(refusal("json", `[${typo}]`)).toBeUndefined();
    const distinct = Array.from({ length: BATCH_MAX_UNKNOWN_FIELDS + 1 }, (_, n) => `"k${n}":0`);
    /** Items of 10 keys each (19 values), from `keys`. */
    const items = (keys: string[]) =>
      Array.from({ length: Math.ceil(keys.length / 10) }, (_, n) => `{${keys.slice(n * 10, n * 10 + 10).join(",")}}`);
    const roomy = { maxItems: 20, maxItemBytes: 10_000 };
    for (const size of [3, 1 << 16]) {
      expect(refusal("json", `[${items(distinct).join(",")}]`, size, roomy)).toMatchObject({
        code: "event_too_large",
        message: expect.stringContaining("distinct unknown fields"),
      });
    }
    // The same names again and again are no new ones.
    const repeated = [...items(distinct.slice(0, 40)), ...items(distinct.slice(0, 40))];
    expect(refusal("json", `[${repeated.join(",")}]`, 3, roomy)).toBeUndefined();
    // A value that spells a field name is no key, and a key split over chunks is recognised whole.
    expect(refusal("json", `[{"id":"k1","userId":"userId"}]`, 2)).toBeUndefined();
  });

  it("answers invalid_batch for JSON that is not an array, at its first byte", () => {
    for (const body of ['{"id":"x"}', ' "x"', "12", "null", "true"]) {
      expect(refusal("json", body, 1)).toMatchObject({ code: "invalid_batch" });
    }
  });

  it("answers malformed_json for bytes that start no JSON value or follow the array", () => {
    expect(refusal("json", "x[1]")).toMatchObject({ code: "malformed_json" });
    expect(refusal("json", "[1] [2]")).toMatchObject({ code: "malformed_json" });
    expect(refusal("json", "[1] \n")).toBeUndefined();
  });

  it("refuses long runs of whitespace around the array", () => {
    expect(refusal("json", `${" ".repeat(201)}[]`)).toMatchObject({ code: "invalid_batch" });
    expect(refusal("json", `[]${"\n".repeat(201)}`)).toMatchObject({ code: "invalid_batch" });
  });
});

describe("BatchScan, NDJSON", () => {
  it("counts lines ended by a newline, whatever the chunk boundaries", () => {
    const body = `${event(1)}\n${event(2)}\r\n\n${event(3)}\n`;
    for (let size = 1; size <= body.length; size++) expect(scan("ndjson", body, size).items).toBe(4);
    // The last line without its newline is left to the parser (a final newline is optional).
    expect(scan("ndjson", `${event(1)}\n${event(2)}`).items).toBe(1);
  });

  it("ends a line at every newline, even inside a string or after a backslash of a malformed line", () => {
    expect(scan("ndjson", '{"id":"a\n{"id":"b\\\n{"a":[1,\n').items).toBe(3);
    expect(scan("ndjson", '{"id":"a\\\n', 9).items).toBe(1);
  });

  it("refuses a newline bomb at the newline past BATCH_MAX_EVENTS", () => {
    const scanner = new BatchScan("ndjson", limits);
    expect(() => scanner.push(Buffer.alloc(10 * 1024 * 1024, "\n"))).toThrow(
      expect.objectContaining({ code: "too_many_events" }),
    );
    expect(refusal("ndjson", "\n".repeat(5))).toBeUndefined();
  });

  it("refuses a line larger than the limit, with or without its newline", () => {
    expect(refusal("ndjson", `${event(1)}\n${"x".repeat(201)}\n`)).toMatchObject({
      code: "event_too_large",
      message: expect.stringMatching(/^item 1 /),
    });
    expect(refusal("ndjson", "x".repeat(300), 50)).toMatchObject({ code: "event_too_large" });
  });

  it("applies the item limits to each line and starts each line afresh", () => {
    expect(refusal("ndjson", `[[[[[[\n${event(1)}\n`)).toMatchObject({ code: "event_too_large" });
    expect(refusal("ndjson", `[[[[\n[[[[\n${event(1)}\n`)).toBeUndefined();
  });
});

describe("BatchScan against JSON.parse", () => {
  const pieces = ["a", ",", "]", "[", "{", "}", ":", '"', "\\", "\n", " ", "é", "\u2028", "\u0000", "id", "adId"];

  /** A JSON value within the item limits: strings full of structure characters and escapes, some nesting. */
  function value(next: () => number, depth: number): unknown {
    const kind = Math.floor(next() * (depth < 3 ? 6 : 4));
    if (kind === 0) return Math.floor(next() * 1e6) - 5e5;
    if (kind === 1)
      return Array.from({ length: Math.floor(next() * 6) }, () => pieces[Math.floor(next() * 16)]).join("");
    if (kind === 2) return [true, false, null][Math.floor(next() * 3)];
    if (kind === 3) return next() * 1e3;
    if (kind === 4) return Array.from({ length: Math.floor(next() * 3) }, () => value(next, depth + 1));
    const keys = ["id", "ts", "userId", "adId", "x,y", "a]b"];
    return Object.fromEntries(
      Array.from({ length: Math.floor(next() * 3) }, () => [keys[Math.floor(next() * 6)], value(next, depth + 1)]),
    );
  }

  it("counts exactly what JSON.parse finds in random arrays and NDJSON within the limits, in any chunking", () => {
    const roomy = { maxItems: 50, maxItemBytes: 16_384 };
    for (let seed = 1; seed <= 300; seed++) {
      const next = seededRng(seed);
      const items = Array.from({ length: Math.floor(next() * 20) }, () => value(next, 1));
      const space = () => [" ", "\n", "\t", "\r\n", ""][Math.floor(next() * 5)] as string;
      const array = `${space()}[${items.map((item) => `${space()}${JSON.stringify(item)}${space()}`).join(",")}]${space()}`;
      const ndjson = items.map((item) => `${JSON.stringify(item)}${space().replace("\n", "")}\n`).join("");
      const size = 1 + Math.floor(next() * 40);
      expect(JSON.parse(array)).toHaveLength(items.length);
      expect(scan("json", array, size, roomy).items, `seed ${seed}`).toBe(items.length);
      expect(scan("ndjson", ndjson, size, roomy).items, `seed ${seed}`).toBe(items.length);
    }
  });
});
