import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait.ts";
import type { WatchedFile } from "../watched-file.ts";
import type { Keyring } from "./keyring.ts";
import { hashSecret, type KeysFile, KeysFileError, writeKeysFile } from "./keys-file.ts";
import { watchKeys } from "./keys-watcher.ts";

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
let watcher: WatchedFile<Keyring> | undefined;
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

  it("throws at start when the file is missing, names no key, or every key in it is revoked", () => {
    expect(() => watch()).toThrow(
      expect.objectContaining({ problem: "not_found", message: `keys file ${path}: not found` }),
    );
    writeKeysFile(path, fileWith());
    expect(() => watch()).toThrow(
      expect.objectContaining({ problem: "no_keys", message: `keys file ${path}: names no key ("keys": [])` }),
    );
    const [one] = fileWith("one").keys;
    writeKeysFile(path, {
      version: 1,
      keys: [{ ...(one as KeysFile["keys"][number]), revokedAt: "2026-11-25T00:00:00Z" }],
    });
    expect(() => watch()).toThrow(`keys file ${path}: every key in it is revoked`);
  });

  it("keeps the last good keys when the file is emptied, and reports it naming the file", async () => {
    writeKeysFile(path, fileWith("one"));
    const keys = watch();
    writeKeysFile(path, fileWith());
    const error = await waitFor("the error", 5_000, () => errors[0]);
    expect(error.message).toBe(`keys file ${path}: names no key ("keys": [])`);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(reloads).toEqual([]);
  });

  it("takes a file whose every key is revoked: nothing authenticates", async () => {
    writeKeysFile(path, fileWith("one"));
    const keys = watch();
    const [one] = fileWith("one").keys;
    writeKeysFile(path, {
      version: 1,
      keys: [{ ...(one as KeysFile["keys"][number]), revokedAt: "2026-11-25T00:00:00Z" }],
    });
    await waitFor("the reload", 5_000, () => reloads[0]);
    expect(keys.current().activeCount).toBe(0);
    expect(keys.current().authenticate("one")).toBeUndefined();
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
    expect(error.message).toBe(`keys file ${path}: not found`);
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
