import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hashSecret, writeKeysFile } from "../src/auth/keys-file.ts";
import { keysProblem, launchAuth } from "./auth-mode.ts";
import { repoRoot } from "./paths.ts";

const devFile = join(repoRoot, ".data/dev/keys.json");

describe("launchAuth (npm start)", () => {
  it("runs keys off, with a banner naming the file and how to turn keys on, while no keys file exists", () => {
    const launch = launchAuth({}, () => false);
    expect(launch).toMatchObject({ auth: "off", keysFile: devFile });
    expect(launch.banner?.join("\n")).toContain(`KEYS ARE OFF: there is no keys file at ${devFile}`);
    expect(launch.banner?.join("\n")).toContain("npm run keys -- create --scope ingest --name NAME");
  });

  it("requires keys as soon as the file exists, whatever it holds", () => {
    expect(launchAuth({}, (path) => path === devFile)).toEqual({
      auth: "required",
      keysFile: devFile,
      banner: undefined,
    });
  });

  it("passes AUTH as set, and resolves API_KEYS_FILE from the repository root", () => {
    expect(launchAuth({ AUTH: "required", API_KEYS_FILE: "keys/k.json" }, () => false)).toEqual({
      auth: "required",
      keysFile: join(repoRoot, "keys/k.json"),
      banner: undefined,
    });
    expect(launchAuth({ AUTH: "off", API_KEYS_FILE: "/etc/k.json" }, () => true)).toMatchObject({
      auth: "off",
      keysFile: "/etc/k.json",
    });
  });
});

describe("keysProblem", () => {
  it("says why the API would wait for a keys file at start, and nothing for one it takes", () => {
    const dir = mkdtempSync(join(tmpdir(), "auth-mode-"));
    try {
      const file = join(dir, "keys.json");
      expect(keysProblem(file)).toBe(`keys file ${file}: not found`);
      writeFileSync(file, '{"version":1,"keys":[]}');
      expect(keysProblem(file)).toBe(`keys file ${file}: names no key ("keys": [])`);
      const key = { name: "k", scope: "ingest" as const, sha256: hashSecret("k"), createdAt: "2026-12-01T10:00:00Z" };
      writeKeysFile(file, { version: 1, keys: [{ ...key, revokedAt: "2026-12-01T11:00:00Z" }] });
      expect(keysProblem(file)).toBe(`keys file ${file}: every key in it is revoked`);
      writeKeysFile(file, { version: 1, keys: [key] });
      expect(keysProblem(file)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
