import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashSecret } from "./keys-file.ts";

const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
let dir: string;
let file: string;

function keys(...args: string[]) {
  const run = spawnSync(process.execPath, [cli, ...args], {
    env: { ...process.env, API_KEYS_FILE: file },
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, lines: run.stdout.trimEnd().split("\n") };
}

/** keys() without waiting: several run at once. */
function keysAsync(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, API_KEYS_FILE: file } });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr })));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "keys-cli-"));
  file = join(dir, "keys.json");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One file through the steps, in order: create, list, refusals, revoke.
describe("npm run keys", () => {
  let secret: string;
  let signingSecret: string;

  it("create prints a summary and the secret alone on the last line; the file keeps its SHA-256, mode 0600", () => {
    const run = keys(
      "create",
      ...["--scope", "ingest", "--name", "web", "--origin", "https://a.example", "--rate", "500"],
      ...["--click-domain", "shop.example,*.cdn.example"],
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`created ingest key "web" in ${file}`);
    expect(run.stdout).toMatch(
      /origins: https:\/\/a\.example\n.*rate: +500 events\/s\n.*signed: +no\n.*browser: +no\n.*clicks: +to shop\.example, \*\.cdn\.example/,
    );
    secret = run.lines.at(-1) ?? "";
    expect(secret).toMatch(/^imp_ing_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(secret);
    expect(JSON.parse(text).keys[0]).toMatchObject({
      name: "web",
      sha256: hashSecret(secret),
      rate: 500,
      clickDomains: ["shop.example", "*.cdn.example"],
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("create --signed also prints the signing secret, which the file keeps for the API", () => {
    const run = keys("create", "--scope", "ingest", "--name", "pixel", "--signed");
    expect(run.code).toBe(0);
    signingSecret = run.stdout.match(/^signing secret: ([0-9a-f]{64})$/m)?.[1] ?? "";
    expect(signingSecret).not.toBe("");
    expect(run.lines.at(-1)).toMatch(/^imp_ing_/);
    expect(JSON.parse(readFileSync(file, "utf8")).keys[1]).toMatchObject({ name: "pixel", signingSecret });
    expect(JSON.parse(readFileSync(file, "utf8")).keys[1].browser).toBeUndefined();
    expect(keys("create", "--scope", "query", "--name", "dash").lines.at(-1)).toMatch(/^imp_qry_/);
  });

  it("create --scope query takes the ads a tenant's key may read and its rate in requests per second", () => {
    const run = keys(
      "create",
      "--scope",
      "query",
      "--name",
      "acme",
      "--ads",
      "acme-*",
      "--ads",
      "acme:eu-*",
      "--rate",
      "3",
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ads: +acme-\*, acme:eu-\*\n.*rate: +3 requests\/s/);
    expect(JSON.parse(readFileSync(file, "utf8")).keys[3]).toMatchObject({
      name: "acme",
      ads: ["acme-*", "acme:eu-*"],
      rate: 3,
    });
  });

  it("create --browser marks a key for pages only", () => {
    const run = keys("create", "--scope", "ingest", "--name", "page", "--browser");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/browser: +yes: requests without browser signals count as invalid traffic/);
    expect(JSON.parse(readFileSync(file, "utf8")).keys[4]).toMatchObject({ name: "page", browser: true });
  });

  it("list shows every key and its status, never a secret or hash", () => {
    const run = keys("list");
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatch(/^NAME +SCOPE +CREATED +ORIGINS +ADS +RATE +SIGNED +BROWSER +CLICKS +STATUS$/);
    expect(run.lines[1]).toMatch(
      /^web +ingest +\S+ +https:\/\/a\.example +- +500 +no +no +shop\.example,\*\.cdn\.example +active$/,
    );
    expect(run.lines[2]).toMatch(/^pixel +ingest +\S+ +any +- +- +yes +no +- +active$/);
    expect(run.lines[3]).toMatch(/^dash +query +\S+ +- +all +- +no +- +- +active$/);
    expect(run.lines[4]).toMatch(/^acme +query +\S+ +- +acme-\*,acme:eu-\* +3 +no +- +- +active$/);
    expect(run.lines[5]).toMatch(/^page +ingest +\S+ +any +- +- +no +yes +- +active$/);
    expect(run.stdout).not.toContain(secret);
    expect(run.stdout).not.toContain(hashSecret(secret));
    expect(run.stdout).not.toContain(signingSecret);
  });

  it("refuses a duplicate name, a bad scope, origin or rate with exit code 2, and leaves the file as it was", () => {
    const before = readFileSync(file, "utf8");
    const refusals = {
      'a key named "web" already exists': ["create", "--scope", "ingest", "--name", "web"],
      "--scope must be one of ingest, query": ["create", "--scope", "admin", "--name", "x"],
      '--origin "https://a.example/": must be a URL origin': [
        "create",
        "--scope=ingest",
        "--name=x",
        "--origin=https://a.example/",
      ],
      '--rate "0": must be a positive whole number': ["create", "--scope=ingest", "--name=x", "--rate=0"],
      "--signed is only for ingest keys": ["create", "--scope=query", "--name=x", "--signed"],
      'no key named "nope"': ["revoke", "nope"],
    };
    for (const [message, argv] of Object.entries(refusals)) {
      const run = keys(...argv);
      expect({ argv, code: run.code, stdout: run.stdout }).toEqual({ argv, code: 2, stdout: "" });
      expect(run.stderr).toContain(message);
    }
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("revoke marks the key revoked, once", () => {
    expect(keys("revoke", "web")).toMatchObject({ code: 0, stdout: `revoked key "web" in ${file}\n` });
    expect(keys("list").lines[1]).toMatch(/^web .* revoked \d{4}-\d\d-\d\dT\S+Z$/);
    expect(JSON.parse(readFileSync(file, "utf8")).keys[0].revokedAt).toEqual(expect.any(String));
    const again = keys("revoke", "web");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('key "web" was already revoked at');
  });

  it("lets edits made at once all land: each holds the file's lock from its read to its write", async () => {
    const names = Array.from({ length: 6 }, (_, i) => `at-once-${i}`);
    const runs = [
      ...names.map((name) => keysAsync("create", "--scope", "ingest", "--name", name)),
      keysAsync("revoke", "pixel"),
    ];
    expect((await Promise.all(runs)).map((run) => run.code)).toEqual(runs.map(() => 0));
    const stored = JSON.parse(readFileSync(file, "utf8")).keys as { name: string; revokedAt?: string }[];
    expect(stored.map((k) => k.name)).toEqual(expect.arrayContaining(names));
    expect(stored.find((k) => k.name === "pixel")?.revokedAt).toEqual(expect.any(String));
  });

  it("answers usage: on stdout with exit 0 for --help, on stderr with exit 2 for no or an unknown command", () => {
    const help = keys("--help");
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: npm run keys -- <command>/);
    for (const argv of [[], ["rotate"]]) {
      const run = keys(...argv);
      expect(run).toMatchObject({ code: 2, stdout: "" });
      expect(run.stderr).toContain("usage: npm run keys -- <command>");
    }
  });
});
