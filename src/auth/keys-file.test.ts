import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { useTempDir } from "../../test/support/temp-dir.ts";
import {
  editKeysFile,
  hashSecret,
  type KeyRecord,
  KeysFileError,
  newSecret,
  readKeysFile,
  writeKeysFile,
} from "./keys-file.ts";

const hex = (c: string) => c.repeat(64);
const ingest: KeyRecord = {
  name: "web-1",
  scope: "ingest",
  sha256: hex("a"),
  createdAt: "2026-11-24T10:00:00.000Z",
  origins: ["https://a.example", "http://localhost:8080"],
  rate: 500,
  signingSecret: hex("b"),
};
const query: KeyRecord = { name: "dash", scope: "query", sha256: hex("c"), createdAt: "2026-11-24T10:00:00Z" };

const tempDir = useTempDir("keys-file-");
let path: string;
beforeEach(() => {
  path = join(tempDir(), "keys.json");
});

/** The message readKeysFile throws for a file holding `json`. */
function problem(json: unknown): string {
  writeFileSync(path, typeof json === "string" ? json : JSON.stringify(json));
  try {
    readKeysFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(KeysFileError);
    return (error as Error).message;
  }
  throw new Error("expected the file to be refused");
}

describe("readKeysFile", () => {
  it("reads a missing file as no keys, or refuses it with allowMissing: false", () => {
    expect(readKeysFile(path)).toEqual({ version: 1, keys: [] });
    expect(() => readKeysFile(path, { allowMissing: false })).toThrow(`keys file ${path}: not found`);
  });

  it("names the file and the problem when it is unreadable or not JSON", () => {
    expect(() => readKeysFile(tempDir())).toThrow(new RegExp(`^keys file ${tempDir()}: cannot read: .*EISDIR`));
    expect(problem("{")).toMatch(`keys file ${path}: not JSON: `);
  });

  it("names the field of each key that is wrong", () => {
    const message = problem({ version: 1, keys: [ingest, { ...query, scope: "admin" }] });
    expect(message).toMatch(`keys file ${path}: keys.1.scope: Invalid option`);
    expect(problem({ version: 2, keys: [] })).toMatch("version: ");
    expect(problem({ version: 1, keys: [{ ...ingest, secret: "imp_ing_x" }] })).toMatch(
      'keys.0: Unrecognized key: "secret"',
    );
    expect(problem({ version: 1, keys: [{ ...ingest, name: "a b" }] })).toMatch("keys.0.name: must be 1-64 characters");
    expect(problem({ version: 1, keys: [{ ...ingest, sha256: hex("A") }] })).toMatch(
      "keys.0.sha256: must be 64 lowercase",
    );
    expect(problem({ version: 1, keys: [{ ...ingest, rate: 0 }] })).toMatch("keys.0.rate: ");
    expect(problem({ version: 1, keys: [{ ...ingest, createdAt: "yesterday" }] })).toMatch("keys.0.createdAt: ");
  });

  it("takes only origins in normal form", () => {
    for (const origin of ["https://a.example/", "https://A.example", "https://a.example:443", "a.example", "*"]) {
      expect(problem({ version: 1, keys: [{ ...ingest, origins: [origin] }] })).toMatch(
        "keys.0.origins.0: must be a URL origin",
      );
    }
  });

  it("takes a rate and ads on a query key (version 1 still), and files written before ads as they are", () => {
    const tenant = { ...query, rate: 5, ads: ["acme-*", "acme:eu.1"] };
    writeFileSync(path, JSON.stringify({ version: 1, keys: [ingest, tenant] }));
    expect(readKeysFile(path).keys).toEqual([ingest, tenant]);
    expect(problem({ version: 1, keys: [{ ...query, ads: [] }] })).toMatch("keys.0.ads: ");
    expect(problem({ version: 1, keys: [{ ...query, ads: ["acme %"] }] })).toMatch(
      "keys.0.ads.0: must be ad id characters (A-Z a-z 0-9 . _ : -) and * only",
    );
  });

  it("refuses origins, a signing secret or --browser on a query key, ads on an ingest key, and two keys with one name or one secret", () => {
    const message = problem({
      version: 1,
      keys: [{ ...query, origins: ["https://a.example"], signingSecret: hex("b") }],
    });
    expect(message).toMatch(
      "keys.0.origins: only an ingest key can have origins; keys.0.signingSecret: only an ingest key",
    );
    expect(problem({ version: 1, keys: [{ ...ingest, ads: ["a-*"] }] })).toMatch(
      "keys.0.ads: only a query key can have ads",
    );
    expect(problem({ version: 1, keys: [{ ...query, browser: true }] })).toMatch(
      "keys.0.browser: only an ingest key can have browser",
    );
    expect(problem({ version: 1, keys: [ingest, { ...query, name: "web-1" }] })).toMatch(
      "keys.1.name: same name as keys.0",
    );
    expect(problem({ version: 1, keys: [ingest, { ...query, sha256: ingest.sha256 }] })).toMatch(
      "keys.1.sha256: same secret as keys.0",
    );
  });
});

describe("writeKeysFile", () => {
  it("writes a file readKeysFile reads back, creating its directory, with mode 0600 and no temp file left", () => {
    const nested = join(tempDir(), "a", "b", "keys.json");
    const file = { version: 1 as const, keys: [ingest, { ...query, revokedAt: "2026-11-25T00:00:00.000Z" }] };
    writeKeysFile(nested, file);
    expect(readKeysFile(nested)).toEqual(file);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
    writeKeysFile(nested, { version: 1, keys: [query] });
    expect(readKeysFile(nested).keys).toEqual([query]);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(tempDir(), "a", "b"))).toEqual(["keys.json"]);
  });

  it("refuses an invalid file and leaves the one there as it was", () => {
    writeKeysFile(path, { version: 1, keys: [query] });
    const before = readFileSync(path, "utf8");
    expect(() => writeKeysFile(path, { version: 1, keys: [query, query] })).toThrow(KeysFileError);
    expect(readFileSync(path, "utf8")).toBe(before);
  });
});

describe("editKeysFile", () => {
  const named = (name: string): KeyRecord => ({ ...query, name, sha256: hashSecret(name) });

  it("serializes edits: two at once both land, though each takes its time between read and write", async () => {
    writeKeysFile(path, { version: 1, keys: [named("a")] });
    let firstRead!: () => void;
    const firstHasRead = new Promise<void>((resolve) => {
      firstRead = resolve;
    });
    const first = editKeysFile(path, async (file) => {
      firstRead();
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { file: { ...file, keys: [...file.keys, named("b")] }, result: "first" };
    });
    await firstHasRead;
    const second = editKeysFile(path, (file) => ({
      file: { ...file, keys: file.keys.map((k) => ({ ...k, revokedAt: "2026-11-25T00:00:00.000Z" })) },
      result: file.keys.length,
    }));
    expect(await Promise.all([first, second])).toEqual(["first", 2]);
    expect(readKeysFile(path).keys.map((k) => [k.name, k.revokedAt !== undefined])).toEqual([
      ["a", true],
      ["b", true],
    ]);
    expect(readdirSync(tempDir())).toEqual(["keys.json"]);
  });

  it("starts from an empty file when there is none, and writes nothing when the edit throws", async () => {
    await editKeysFile(path, (file) => ({ file: { ...file, keys: [named("a")] }, result: undefined }));
    expect(readKeysFile(path).keys).toEqual([named("a")]);
    const before = readFileSync(path, "utf8");
    await expect(editKeysFile(path, () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(readFileSync(path, "utf8")).toBe(before);
    expect(readdirSync(tempDir())).toEqual(["keys.json"]);
  });
});

describe("secrets", () => {
  it("are random, prefixed by scope, and hashed with SHA-256 hex", () => {
    const secret = newSecret("ingest");
    expect(secret).toMatch(/^imp_ing_[A-Za-z0-9_-]{43}$/);
    expect(newSecret("query")).toMatch(/^imp_qry_[A-Za-z0-9_-]{43}$/);
    expect(newSecret("ingest")).not.toBe(secret);
    expect(hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
