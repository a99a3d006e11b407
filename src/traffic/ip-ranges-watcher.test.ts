import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait.ts";
import { type Address, parseAddress } from "../ip-address.ts";
import type { WatchedFile } from "../watched-file.ts";
import type { IpRanges, IpRangesError } from "./ip-ranges.ts";
import { watchIpRanges } from "./ip-ranges-watcher.ts";

let dir: string;
let path: string;
let watcher: WatchedFile<IpRanges> | undefined;
let reloads: IpRanges[];
let errors: IpRangesError[];
const watch = () => {
  watcher = watchIpRanges(path, { intervalMs: 20, onReload: (r) => reloads.push(r), onError: (e) => errors.push(e) });
  return watcher;
};
const listed = (text: string) => watcher?.current().has(parseAddress(text) as Address);
/** Replaces the file atomically, as an editor or a deploy tool would. */
function replace(text: string) {
  const temp = join(dir, "ranges.tmp");
  writeFileSync(temp, text);
  renameSync(temp, path);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ip-ranges-"));
  path = join(dir, "ranges.txt");
  reloads = [];
  errors = [];
});
afterEach(() => {
  watcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("watchIpRanges", () => {
  it("loads the file at start and picks up a change, an atomic rename-over included", async () => {
    writeFileSync(path, "198.51.100.0/24\n");
    watch();
    expect([listed("198.51.100.9"), listed("203.0.113.9")]).toEqual([true, false]);
    replace("198.51.100.0/24\n203.0.113.0/24\n");
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect([listed("198.51.100.9"), listed("203.0.113.9")]).toEqual([true, true]);
    expect(errors).toEqual([]);
  });

  it("throws at start when the file is missing or holds a line that is not a range", () => {
    expect(() => watch()).toThrow(`IP ranges file ${path}: cannot read`);
    writeFileSync(path, "198.51.100.0/24\nnot a range\n");
    expect(() => watch()).toThrow(`IP ranges file ${path}: not an IP address or CIDR range: line 2`);
  });

  it("keeps the last good ranges through a broken edit or a deletion, and takes an emptied file", async () => {
    writeFileSync(path, "198.51.100.0/24\n");
    watch();
    replace("198.51.100.0/24\n203.0.113.0/33\n");
    await waitFor("the broken edit reported", 5_000, () => errors[0]);
    expect(errors[0]?.message).toContain('line 2: "203.0.113.0/33"');
    expect(listed("198.51.100.9")).toBe(true);
    rmSync(path);
    await waitFor("the deletion reported", 5_000, () => errors[1]);
    expect(listed("198.51.100.9")).toBe(true);
    replace("# none any more\n");
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect(listed("198.51.100.9")).toBe(false);
  });
});
