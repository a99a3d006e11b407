import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { type ApiProcess, spawnApi, startApi } from "../../test/support/api-process.ts";
import { testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { runKeysCli } from "../../test/support/keys.ts";
import { waitFor } from "../../test/support/wait.ts";

// The api process as pm2 runs it, with a keys file of its own: it fails closed at start and at run time.
const dir = mkdtempSync(join(tmpdir(), "api-keys-"));
const config = testConfig({ KAFKA_TOPIC: "api-keys-test", KAFKA_DLQ_TOPIC: "api-keys-test.dlq" });
const running: ApiProcess[] = [];
afterEach(() => {
  for (const api of running.splice(0)) api.kill();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No AUTH: the process's default (required), as a deployment that sets nothing gets. */
const apiEnv = (keysFile: string, env: Record<string, string> = {}) => ({
  KAFKA_PARTITIONS: "1",
  API_ROLE: "all",
  LOG_LEVEL: "info",
  API_KEYS_FILE: keysFile,
  ...env,
});

/** The process's exit code and output, for one that should stop at start. */
async function exitOf(keysFile: string, env: Record<string, string> = {}) {
  const api = await spawnApi(config, apiEnv(keysFile, env));
  running.push(api);
  return api.exit();
}

/** The one line saying why it stopped (pino's fatal line), parsed. */
function fatalLine(output: string): string {
  const lines = output.split("\n").filter((line) => line.includes('"level":60'));
  expect(lines).toHaveLength(1);
  return (JSON.parse(lines[0] as string) as { msg: string }).msg;
}

async function startServing(keysFile: string, env: Record<string, string> = {}) {
  const api = await startApi(config, apiEnv(keysFile, env));
  running.push(api);
  const send = (key?: string) =>
    fetch(`${api.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(makeImpression("keys")),
    }).then((r) => r.status);
  /** /stats and /metrics without a key: both must stay 401 whatever happens to the file. */
  const readOpen = async () =>
    [(await fetch(`${api.url}/stats?timeWindowMinutes=5`)).status, (await fetch(`${api.url}/metrics`)).status] as const;
  return { ...api, send, readOpen };
}

describe("api process start: keys required unless AUTH=off", () => {
  it("stops with one line naming an invalid keys file", async () => {
    const file = join(dir, "broken.json");
    writeFileSync(file, '{"version":1,"keys":[{"name":"x"}]}');
    const { code, output } = await exitOf(file);
    expect(code).not.toBe(0);
    expect(fatalLine(output)).toMatch(`AUTH=required, but keys file ${file}: keys.0.scope`);
  });

  it("stops with one line naming a missing file by its absolute path and the working directory it was resolved from", async () => {
    const { code, output } = await exitOf("moved/keys.json");
    expect(code).not.toBe(0);
    const absolute = join(repoRoot, "moved/keys.json");
    expect(fatalLine(output)).toBe(
      `AUTH=required, but keys file ${absolute}: not found (API_KEYS_FILE, resolved from working directory ` +
        `${repoRoot.replace(/\/$/, "")}): create a key with API_KEYS_FILE=${absolute} npm run keys -- create ` +
        "--scope ingest --name NAME, or set AUTH=off to run without keys",
    );
  });

  it("stops on a file that names no key, or whose every key is revoked", async () => {
    const empty = join(dir, "empty.json");
    writeFileSync(empty, '{"version":1,"keys":[]}');
    expect(fatalLine((await exitOf(empty)).output)).toMatch(
      `AUTH=required, but keys file ${empty}: names no key ("keys": [])`,
    );
    const revoked = join(dir, "revoked.json");
    runKeysCli(revoked, "create", "--scope", "ingest", "--name", "gone");
    runKeysCli(revoked, "revoke", "gone");
    expect(fatalLine((await exitOf(revoked)).output)).toMatch(
      `AUTH=required, but keys file ${revoked}: every key in it is revoked`,
    );
  });

  it("refuses AUTH=auto, saying why and what to use", async () => {
    const { code, output } = await exitOf(join(dir, "none.json"), { AUTH: "auto" });
    expect(code).not.toBe(0);
    expect(output).toContain('AUTH="auto": auto was removed: it ran the API open while the keys file held no key');
    expect(output).toContain("Use required");
  });

  it("runs open only with AUTH=off, and says so at start", async () => {
    const api = await startServing(join(dir, "none.json"), { AUTH: "off" });
    expect(api.output()).toContain("AUTH=off: every route is open to anyone who reaches this API");
    expect(await api.send()).toBe(202);
  });
});

describe("api process at run time: the keys file never opens the API", () => {
  it("keeps the last good keys when the file is emptied, deleted, moved away or broken; takes new keys within 5 s", async () => {
    const file = join(dir, "live.json");
    const secret = runKeysCli(file, "create", "--scope", "ingest", "--name", "site");
    const api = await startServing(file);
    expect(await api.send(secret)).toBe(202);
    expect(await api.send()).toBe(401);
    expect(await api.readOpen()).toEqual([401, 401]);

    const reported = (problem: string) =>
      waitFor(`"${problem}" to be reported`, 5_000, () =>
        api.output().includes(`keys file ${file}: ${problem}`) ? true : undefined,
      );
    writeFileSync(file, '{"version":1,"keys":[]}');
    await reported("names no key");
    expect(api.output()).toContain("keeping the last good keys");
    expect(await api.readOpen()).toEqual([401, 401]);
    expect(await api.send()).toBe(401);
    expect(await api.send(secret)).toBe(202);

    rmSync(file);
    await reported("not found");
    expect(await api.readOpen()).toEqual([401, 401]);
    expect(await api.send(secret)).toBe(202);

    writeFileSync(file, "{ not json");
    await reported("not JSON");
    expect(await api.readOpen()).toEqual([401, 401]);
    expect(await api.send(secret)).toBe(202);

    rmSync(file);
    const other = runKeysCli(file, "create", "--scope", "ingest", "--name", "other");
    const started = Date.now();
    await waitFor("the new file to be taken", 5_000, async () => ((await api.send(other)) === 202 ? true : undefined));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await api.send(secret)).toBe(401);
    renameSync(file, join(dir, "elsewhere.json"));
    await reported("not found");
    expect(await api.send(other)).toBe(202);
    expect(await api.send()).toBe(401);
  });

  it("revoking every key locks every keyed route (401), it never opens one", async () => {
    const file = join(dir, "revoke-all.json");
    const ingest = runKeysCli(file, "create", "--scope", "ingest", "--name", "site");
    runKeysCli(file, "create", "--scope", "query", "--name", "dash");
    const api = await startServing(file);
    expect(await api.send(ingest)).toBe(202);
    runKeysCli(file, "revoke", "site");
    runKeysCli(file, "revoke", "dash");
    await waitFor("the revocation to be taken", 5_000, async () =>
      (await api.send(ingest)) === 401 ? true : undefined,
    );
    expect(await api.send()).toBe(401);
    expect(await api.readOpen()).toEqual([401, 401]);
  });
});
