import { describe, expect, it } from "vitest";
import { Keyring } from "./keyring.ts";
import { hashSecret, type KeysFile } from "./keys-file.ts";

const createdAt = "2026-11-24T10:00:00.000Z";
const file: KeysFile = {
  version: 1,
  keys: [
    {
      name: "web",
      scope: "ingest",
      sha256: hashSecret("imp_ing_web"),
      createdAt,
      origins: ["https://a.example"],
      rate: 100,
      signingSecret: "ab".repeat(32),
      browser: true,
    },
    { name: "dash", scope: "query", sha256: hashSecret("imp_qry_dash"), createdAt },
    { name: "acme", scope: "query", sha256: hashSecret("imp_qry_acme"), createdAt, rate: 5, ads: ["acme-*"] },
    { name: "old", scope: "ingest", sha256: hashSecret("imp_ing_old"), createdAt, revokedAt: createdAt },
  ],
};

describe("Keyring", () => {
  const keyring = new Keyring(file);

  it("finds the key a secret belongs to, with what the API needs of it", () => {
    expect(keyring.authenticate("imp_ing_web")).toEqual({
      name: "web",
      scope: "ingest",
      origins: new Set(["https://a.example"]),
      rate: 100,
      ads: undefined,
      signingSecret: "ab".repeat(32),
      browser: true,
    });
    expect(keyring.authenticate("imp_qry_dash")).toEqual({
      name: "dash",
      scope: "query",
      origins: undefined,
      rate: undefined,
      ads: undefined,
      signingSecret: undefined,
      browser: false,
    });
    const acme = keyring.authenticate("imp_qry_acme");
    expect(acme).toMatchObject({ name: "acme", scope: "query", rate: 5 });
    expect(acme?.ads?.patterns).toEqual(["acme-*"]);
  });

  it("authenticates no unknown secret, no hash presented as a secret, and no revoked key", () => {
    expect(keyring.authenticate("imp_ing_wrong")).toBeUndefined();
    expect(keyring.authenticate("")).toBeUndefined();
    expect(keyring.authenticate(hashSecret("imp_ing_web"))).toBeUndefined();
    expect(keyring.authenticate("imp_ing_old")).toBeUndefined();
    expect(keyring.activeCount).toBe(3);
  });

  it("authenticates nothing when there are no keys", () => {
    const empty = new Keyring({ version: 1, keys: [] });
    expect(empty.activeCount).toBe(0);
    expect(empty.authenticate("imp_ing_web")).toBeUndefined();
  });

  it("authenticates nothing when every key is revoked", () => {
    const revoked = new Keyring({ version: 1, keys: file.keys.filter((k) => k.revokedAt !== undefined) });
    expect(revoked.activeCount).toBe(0);
    expect(revoked.authenticate("imp_ing_old")).toBeUndefined();
  });
});
