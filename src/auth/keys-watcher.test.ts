import { rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait.ts";
import { useWatchedFile } from "../../test/support/watched-file.ts";
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

const watched = useWatchedFile<Keyring, KeysFileError>("keys-watcher-", "keys.json", watchKeys);

describe("watchKeys", () => {
  it("loads the file at start and picks up a change, an atomic rename-over included", async () => {
    writeKeysFile(watched.path, fileWith("one"));
    const keys = watched.watch();
    expect(keys.current().authenticate("one")?.name).toBe("one");
    writeKeysFile(watched.path, fileWith("one", "two"));
    await waitFor("the reload", 5_000, () => watched.reloads[0]);
    expect(keys.current().activeCount).toBe(2);
    expect(keys.current().authenticate("two")?.name).toBe("two");
    expect(watched.errors).toEqual([]);
  });

  it("throws at start when the file is missing, names no key, or every key in it is revoked", () => {
    expect(() => watched.watch()).toThrow(
      expect.objectContaining({ problem: "not_found", message: `keys file ${watched.path}: not found` }),
    );
    writeKeysFile(watched.path, fileWith());
    expect(() => watched.watch()).toThrow(
      expect.objectContaining({ problem: "no_keys", message: `keys file ${watched.path}: names no key ("keys": [])` }),
    );
    const [one] = fileWith("one").keys;
    writeKeysFile(watched.path, {
      version: 1,
      keys: [{ ...(one as KeysFile["keys"][number]), revokedAt: "2026-11-25T00:00:00Z" }],
    });
    expect(() => watched.watch()).toThrow(`keys file ${watched.path}: every key in it is revoked`);
  });

  it("keeps the last good keys when the file is emptied, and reports it naming the file", async () => {
    writeKeysFile(watched.path, fileWith("one"));
    const keys = watched.watch();
    writeKeysFile(watched.path, fileWith());
    const error = await waitFor("the error", 5_000, () => watched.errors[0]);
    expect(error.message).toBe(`keys file ${watched.path}: names no key ("keys": [])`);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(watched.reloads).toEqual([]);
  });

  it("takes a file whose every key is revoked: nothing authenticates", async () => {
    writeKeysFile(watched.path, fileWith("one"));
    const keys = watched.watch();
    const [one] = fileWith("one").keys;
    writeKeysFile(watched.path, {
      version: 1,
      keys: [{ ...(one as KeysFile["keys"][number]), revokedAt: "2026-11-25T00:00:00Z" }],
    });
    await waitFor("the reload", 5_000, () => watched.reloads[0]);
    expect(keys.current().activeCount).toBe(0);
    expect(keys.current().authenticate("one")).toBeUndefined();
  });

  it("keeps the last good keys and reports once when the file no longer parses, until it is fixed", async () => {
    writeKeysFile(watched.path, fileWith("one"));
    const keys = watched.watch();
    // Written in place, so a poll may also see it truncated: look for the error of the final content.
    const reported = (problem: string) => () =>
      watched.errors.find((e) => e.message.startsWith(`keys file ${watched.path}: ${problem}`));
    writeFileSync(watched.path, '{"version": 1, "keys": [');
    expect(await waitFor("the error", 5_000, reported("not JSON"))).toBeInstanceOf(KeysFileError);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    const count = watched.errors.length;
    await sleep(100);
    expect(watched.errors).toHaveLength(count);

    writeFileSync(watched.path, JSON.stringify({ version: 1, keys: [{ name: "x" }] }));
    await waitFor("the schema error", 5_000, reported("keys.0.scope"));
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(watched.reloads).toEqual([]);

    writeKeysFile(watched.path, fileWith("two"));
    await waitFor("the reload", 5_000, () => watched.reloads[0]);
    expect(keys.current().authenticate("one")).toBeUndefined();
    expect(keys.current().authenticate("two")?.name).toBe("two");
  });

  it("keeps the last good keys when the file is deleted: deletion does not turn auth off", async () => {
    writeKeysFile(watched.path, fileWith("one"));
    const keys = watched.watch();
    rmSync(watched.path);
    const error = await waitFor("the error", 5_000, () => watched.errors[0]);
    expect(error.message).toBe(`keys file ${watched.path}: not found`);
    expect(keys.current().authenticate("one")?.name).toBe("one");
    expect(watched.reloads).toEqual([]);
  });

  it("throws at start when the file is invalid", () => {
    writeFileSync(watched.path, JSON.stringify({ version: 1, keys: [{ name: "x" }] }));
    expect(() => watched.watch()).toThrow(KeysFileError);
    writeFileSync(watched.path, "not json");
    expect(() => watched.watch()).toThrow(`keys file ${watched.path}: not JSON`);
  });
});
