import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait.ts";
import type { Keyring } from "./keyring.ts";
import { hashSecret, type KeysFile, KeysFileError, writeKeysFile } from "./keys-file.ts";
import { type KeysWatcher, watchKeys } from "./keys-watcher.ts";

const fileWith = (...secrets: string[]): KeysFile => ({
  version: 1,
  keys: secrets.map((secret) => ({
    name: secret,
    scope: "ingest",
    sha256: hashSecret(secret),
    createdAt: "2026-11-24T10:00:00.000Z",
  })),
});

let dir: string;
let path: string;
let watcher: KeysWatcher | undefined;
let reloads: Keyring[];
let errors: KeysFileError[];
const watch = () => {
  watcher = watchKeys(path, { intervalMs: 20, onReload: (k) => reloads.push(k), onError: (e) => errors.push(e) });
  return watcher;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "keys-watcher-"));
  path = join(dir, "keys.json");
  reloads = [];
  errors = [];
});
afterEach(() => {
  watcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("watchKeys", () => {
  it("loads the file at start and picks up a change, an atomic rename-over included", async () => {
    writeKeysFile(path, fileWith("one"));
    const keys = watch();
    expect(keys.current().authenticate("one")?.name).toBe("one");
    writeKeysFile(path, fileWith("one", "two"));
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect(keys.current().activeCount).toBe(2);
    expect(keys.current().authenticate("two")?.name).toBe("two");
    expect(errors).toEqual([]);
  });

  it("starts with no keys when the file is missing, and picks it up once it is there", async () => {
    const keys = watch();
    expect(keys.current().activeCount).toBe(0);
    writeKeysFile(path, fileWith("one"));
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect(keys.current().authenticate("one")?.name).toBe("one");
  });

  it("keeps the last good keys and reports once when the file no longer parses, until it is fixed", async () => {
    writeKeysFile(path, fileWith("one"));
    const keys = watch();
    // Written in place, so a poll may also see it truncated: look for the error of the final content.
    const reported = (problem: string) => () =>
      errors.find((e) => e.message.startsWith(`keys file ${path}: ${problem}`));
    writeFileSync(path, '{"version": 1, "keys": [');
    expect(await waitFor("the error", 5_000, reported("not JSON"))).toBeInstanceOf(KeysFileError);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    const count = errors.length;
    await sleep(100);
    expect(errors).toHaveLength(count);

    writeFileSync(path, JSON.stringify({ version: 1, keys: [{ name: "x" }] }));
    await waitFor("the schema error", 5_000, reported("keys.0.scope"));
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(reloads).toEqual([]);

    writeKeysFile(path, fileWith("two"));
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect(keys.current().authenticate("one")).toBeUndefined();
    expect(keys.current().authenticate("two")?.name).toBe("two");
  });

  it("keeps the last good keys when the file is deleted: deletion does not turn auth off", async () => {
    writeKeysFile(path, fileWith("one"));
    const keys = watch();
    rmSync(path);
    const error = await waitFor("the error", 5_000, () => errors[0]);
    expect(error.message).toMatch(`keys file ${path}: not found`);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(reloads).toEqual([]);
  });

  it("throws at start when the file is invalid", () => {
    writeFileSync(path, JSON.stringify({ version: 1, keys: [{ name: "x" }] }));
    expect(() => watch()).toThrow(KeysFileError);
    writeFileSync(path, "not json");
    expect(() => watch()).toThrow(`keys file ${path}: not JSON`);
  });
});
