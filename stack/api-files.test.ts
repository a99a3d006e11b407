import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { useTempDir } from "../test/support/temp-dir.ts";
import { unusableFile } from "./api-files.ts";

const dir = useTempDir("api-files-");
const required = (keysFile: string) => ({ auth: "required", keysFile, banner: undefined });

describe("unusableFile (npm start)", () => {
  it("names a keys file the API would wait for with AUTH=required, and how to fix it; none with AUTH=off", () => {
    const keysFile = join(dir(), "keys.json");
    expect(unusableFile(required(keysFile), loadConfig({}))).toBe(
      `AUTH=required, but keys file ${keysFile}: not found: fix it (npm run keys -- create ...), or set AUTH=off`,
    );
    expect(unusableFile({ ...required(keysFile), auth: "off" }, loadConfig({}))).toBeUndefined();
  });

  it("names an IP ranges file the API would wait for, unless classification is off; none for one it reads", () => {
    const off = { auth: "off", keysFile: join(dir(), "keys.json"), banner: undefined };
    const ranges = join(dir(), "ranges.txt");
    expect(unusableFile(off, loadConfig({ IVT_IP_RANGES_FILE: ranges }))).toMatch(
      new RegExp(
        `^IVT_IP_RANGES_FILE: IP ranges file ${ranges}: cannot read: .*: fix the file, or unset IVT_IP_RANGES_FILE$`,
      ),
    );
    writeFileSync(ranges, "not-an-address\n");
    expect(unusableFile(off, loadConfig({ IVT_IP_RANGES_FILE: ranges }))).toMatch(
      `IVT_IP_RANGES_FILE: IP ranges file ${ranges}: not an IP address or CIDR range`,
    );
    expect(unusableFile(off, loadConfig({ IVT_IP_RANGES_FILE: ranges, IVT_CLASSIFICATION: "off" }))).toBeUndefined();
    writeFileSync(ranges, "203.0.113.0/24\n");
    expect(unusableFile(off, loadConfig({ IVT_IP_RANGES_FILE: ranges }))).toBeUndefined();
  });
});
