import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait.ts";
import { useWatchedFile } from "../../test/support/watched-file.ts";
import { type Address, parseAddress } from "../ip-address.ts";
import type { IpRanges, IpRangesError } from "./ip-ranges.ts";
import { watchIpRanges } from "./ip-ranges-watcher.ts";

const watched = useWatchedFile<IpRanges, IpRangesError>("ip-ranges-", "ranges.txt", watchIpRanges);
const listed = (text: string) => watched.watcher?.current().has(parseAddress(text) as Address);
/** Replaces the file atomically, as an editor or a deploy tool would. */
function replace(text: string) {
  const temp = join(watched.dir, "ranges.tmp");
  writeFileSync(temp, text);
  renameSync(temp, watched.path);
}

describe("watchIpRanges", () => {
  it("loads the file at start and picks up a change, an atomic rename-over included", async () => {
    writeFileSync(watched.path, "198.51.100.0/24\n");
    watched.watch();
    expect([listed("198.51.100.9"), listed("203.0.113.9")]).toEqual([true, false]);
    replace("198.51.100.0/24\n203.0.113.0/24\n");
    await waitFor("the reload", 5_000, () => watched.reloads[0]);
    expect([listed("198.51.100.9"), listed("203.0.113.9")]).toEqual([true, true]);
    expect(watched.errors).toEqual([]);
  });

  it("throws at start when the file is missing or holds a line that is not a range", () => {
    expect(() => watched.watch()).toThrow(`IP ranges file ${watched.path}: cannot read`);
    writeFileSync(watched.path, "198.51.100.0/24\nnot a range\n");
    expect(() => watched.watch()).toThrow(`IP ranges file ${watched.path}: not an IP address or CIDR range: line 2`);
  });

  it("keeps the last good ranges through a broken edit or a deletion, and takes an emptied file", async () => {
    writeFileSync(watched.path, "198.51.100.0/24\n");
    watched.watch();
    replace("198.51.100.0/24\n203.0.113.0/33\n");
    await waitFor("the broken edit reported", 5_000, () => watched.errors[0]);
    expect(watched.errors[0]?.message).toContain('line 2: "203.0.113.0/33"');
    expect(listed("198.51.100.9")).toBe(true);
    rmSync(watched.path);
    await waitFor("the deletion reported", 5_000, () => watched.errors[1]);
    expect(listed("198.51.100.9")).toBe(true);
    replace("# none any more\n");
    await waitFor("the reload", 5_000, () => watched.reloads[0]);
    expect(listed("198.51.100.9")).toBe(false);
  });
});
