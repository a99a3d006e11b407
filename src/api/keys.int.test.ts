import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type ApiProcess, spawnApi, startApi } from "../../test/support/api-process.ts";
import { testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { runKeysCli } from "../../test/support/keys.ts";
import { waitFor } from "../../test/support/wait.ts";

// The api process as pm2 runs it, with a keys file of its own: start-up checks, hot reload, broken files.
const dir = mkdtempSync(join(tmpdir(), "api-keys-"));
const config = testConfig({ KAFKA_TOPIC: "api-keys-test", KAFKA_DLQ_TOPIC: "api-keys-test.dlq" });
const running: ApiProcess[] = [];
afterEach(() => {
  for (const api of running.splice(0)) api.kill();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const apiEnv = (keysFile: string, env: Record<string, string> = {}) => ({
  KAFKA_PARTITIONS: "1",
  API_ROLE: "ingest",
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

async function startServing(keysFile: string) {
  const api = await startApi(config, apiEnv(keysFile));
  running.push(api);
  const send = (key?: string) =>
    fetch(`${api.url}/event`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(makeImpression("keys")),
    }).then((r) => r.status);
  return { ...api, send };
}

describe("api process and its keys file", () => {
  it("stops at start with a message naming an invalid keys file", async () => {
    const file = join(dir, "broken.json");
    writeFileSync(file, '{"version":1,"keys":[{"name":"x"}]}');
    const { code, output } = await exitOf(file);
    expect(code).not.toBe(0);
    expect(output).toContain(`keys file ${file}`);
    expect(output).toContain("keys.0.scope");
  });

  it("with AUTH=required refuses to start without an active key, naming the file", async () => {
    const file = join(dir, "none.json");
    const { code, output } = await exitOf(file, { AUTH: "required" });
    expect(code).not.toBe(0);
    expect(output).toContain(`AUTH=required, but ${file} holds no active key`);
  });

  it("runs open and says so while the file holds no key; picks up new keys, broken edits and revocations within 5 s", async () => {
    const file = join(dir, "live.json");
    const api = await startServing(file);
    expect(api.output()).toContain("NO API KEYS");
    expect(await api.send()).toBe(202);

    const secret = runKeysCli(file, "create", "--scope", "ingest", "--name", "site");
    const started = Date.now();
    await waitFor("keys to be required", 5_000, async () => ((await api.send()) === 401 ? true : undefined), 200);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await api.send(secret)).toBe(202);

    writeFileSync(file, "{ not json");
    await waitFor("the broken file to be reported", 5_000, () =>
      api.output().includes(`keys file ${file}: not JSON`) ? true : undefined,
    );
    expect(api.output()).toContain("keeping the last good keys");
    expect(await api.send(secret)).toBe(202);
    expect(await api.send()).toBe(401);

    // A fixed file with the key revoked: the key stops working, and the API does not fall open.
    writeFileSync(file, "");
    rmSync(file);
    const other = runKeysCli(file, "create", "--scope", "ingest", "--name", "other");
    runKeysCli(file, "revoke", "other");
    await waitFor("the revoked key to be refused", 5_000, async () =>
      (await api.send(other)) === 401 && (await api.send(secret)) === 401 ? true : undefined,
    );
    expect(await api.send()).toBe(401);
  });
});
