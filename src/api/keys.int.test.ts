import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { type ApiProcess, spawnApi, startApi } from "../../test/support/api-process.ts";
import { testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { runKeysCli } from "../../test/support/keys.ts";
import { waitFor } from "../../test/support/wait.ts";

// The api process as pm2 runs it, with a keys file of its own: it fails closed at start (it waits, listening on no
// port, for a file it can use) and at run time (it keeps the last good keys).
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

/** The messages of the error lines it logged so far (pino's level 50), in order. */
const errorLines = (output: string) =>
  output
    .split("\n")
    .filter((line) => line.includes('"level":50'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);

/** What a TCP connection to the port of `url` meets: "connected", or the error's code (ECONNREFUSED: no listener). */
const connectTo = (url: string) =>
  new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });

const waitLine = "; waiting for it, not listening on any port until then";

/**
 * An api process that waits for its file: spawned, then resolved once it has said so in `lines` error lines, still
 * running and taking no connection on its port or its metrics port (both given, so both can be tried).
 */
async function startWaiting(keysFile: string, lines: number, env: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const api = await spawnApi(config, apiEnv(keysFile, { API_METRICS_PORT: String(metricsPort), ...env }));
  running.push(api);
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const said = (count: number) =>
    waitFor(`line ${count} saying it waits`, 10_000, () => {
      if (api.child.exitCode !== null) throw new Error(`the api exited with ${api.child.exitCode}:\n${api.output()}`);
      const said = errorLines(api.output());
      return said.length >= count ? said : undefined;
    });
  /** Still running, and no connection on either port. */
  const closed = async () => {
    expect(api.child.exitCode).toBeNull();
    expect([await connectTo(api.url), await connectTo(metricsUrl)]).toEqual(["ECONNREFUSED", "ECONNREFUSED"]);
  };
  await said(lines);
  await closed();
  const send = sender(api.url);
  /** Resolves once it serves (its /healthz answers); fails unless that is within 5 s of the file being made usable. */
  const serving = () =>
    waitFor("the api to serve within 5 s", 5_000, () =>
      fetch(`${api.url}/healthz`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      ),
    );
  return { ...api, said, closed, send, serving };
}

/** The keys CLI creates an ingest key in `keysFile`: the waiting api serves within 5 s, 401 without the key, 202 with it. */
async function servesOnceKeyed(api: Awaited<ReturnType<typeof startWaiting>>, keysFile: string) {
  const key = runKeysCli(keysFile, "create", "--scope", "ingest", "--name", "site");
  await api.serving();
  expect(await api.send()).toBe(401);
  expect(await api.send(key)).toBe(202);
}

/** POST /event to the API at `url`, with `key` or without one; its status. */
const sender = (url: string) => (key?: string) =>
  fetch(`${url}/event`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(makeImpression("keys")),
  }).then((r) => r.status);

/** Puts `text` at `file` in one step (a rename), as the keys CLI writes: no poll can see it half written. */
function replaceWith(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function startServing(keysFile: string, env: Record<string, string> = {}) {
  const api = await startApi(config, apiEnv(keysFile, env));
  running.push(api);
  const send = sender(api.url);
  /** /stats and /metrics without a key: both must stay 401 whatever happens to the file. */
  const readOpen = async () =>
    [(await fetch(`${api.url}/stats?timeWindowMinutes=5`)).status, (await fetch(`${api.url}/metrics`)).status] as const;
  return { ...api, send, readOpen };
}

describe("api process start: keys required unless AUTH=off", () => {
  it("waits, closed, on a missing file with one line naming its absolute path and the working directory; serves with the key the CLI creates", async () => {
    const absolute = join(dir, "moved", "keys.json");
    const api = await startWaiting(relative(repoRoot, absolute), 1);
    expect(errorLines(api.output())).toEqual([
      `AUTH=required, but keys file ${absolute}: not found (API_KEYS_FILE, resolved from working directory ` +
        `${repoRoot.replace(/\/$/, "")}): create a key with API_KEYS_FILE=${absolute} npm run keys -- create ` +
        `--scope ingest --name NAME, or set AUTH=off to run without keys${waitLine}`,
    ]);

    await servesOnceKeyed(api, absolute);
    expect(errorLines(api.output())).toHaveLength(1);
  });

  it("waits, closed, on an invalid file, then an empty one, then one whose every key is revoked, saying each once; serves once a key is active", async () => {
    const file = join(dir, "broken.json");
    writeFileSync(file, '{"version":1,"keys":[{"name":"x"}]}');
    const api = await startWaiting(file, 1);

    replaceWith(file, '{"version":1,"keys":[]}');
    await api.said(2);
    await api.closed();
    // Revoked elsewhere, then moved over it: the file never has an active key on the way.
    const revoked = join(dir, "revoked.json");
    runKeysCli(revoked, "create", "--scope", "ingest", "--name", "gone");
    runKeysCli(revoked, "revoke", "gone");
    renameSync(revoked, file);
    await api.said(3);
    await api.closed();
    expect(errorLines(api.output())).toEqual([
      expect.stringMatching(new RegExp(`^AUTH=required, but keys file ${file}: keys\\.0\\.scope.*${waitLine}$`)),
      `AUTH=required, but keys file ${file}: names no key ("keys": []): create a key with API_KEYS_FILE=${file} ` +
        `npm run keys -- create --scope ingest --name NAME, or set AUTH=off to run without keys${waitLine}`,
      expect.stringMatching(`^AUTH=required, but keys file ${file}: every key in it is revoked: `),
    ]);

    await servesOnceKeyed(api, file);
    expect(errorLines(api.output())).toHaveLength(3);
  });

  it("exits 0 at once on SIGTERM while it waits", async () => {
    const api = await startWaiting(join(dir, "never.json"), 1);
    const exited = api.exit();
    const since = Date.now();
    api.child.kill("SIGTERM");
    expect((await exited).code).toBe(0);
    expect(Date.now() - since).toBeLessThan(2_000);
  });

  it("refuses AUTH=auto at once (exit 1, a config error, whatever the keys file), saying why and what to use", async () => {
    const { code, output } = await exitOf(join(dir, "none.json"), { AUTH: "auto" });
    expect(code).toBe(1);
    expect(output).toContain('AUTH="auto": auto was removed: it ran the API open while the keys file held no key');
    expect(output).toContain("Use required");
  });

  it("runs open only with AUTH=off, and says so at start", async () => {
    const api = await startServing(join(dir, "none.json"), { AUTH: "off" });
    expect(api.output()).toContain("AUTH=off: every route is open to anyone who reaches this API");
    expect(await api.send()).toBe(202);
  });

  it("waits, closed, for an IVT_IP_RANGES_FILE it cannot read or parse, saying each problem once; serves once it can", async () => {
    const ranges = join(dir, "ranges.txt");
    const api = await startWaiting(join(dir, "none.json"), 1, { AUTH: "off", IVT_IP_RANGES_FILE: ranges });
    replaceWith(ranges, "203.0.113.0/24\nnot-an-address\n");
    await api.said(2);
    await api.closed();
    expect(errorLines(api.output())).toEqual([
      expect.stringMatching(
        `^IVT_IP_RANGES_FILE: IP ranges file ${ranges}: cannot read: ENOENT.*: fix the file, or unset IVT_IP_RANGES_FILE${waitLine}$`,
      ),
      expect.stringMatching(`^IVT_IP_RANGES_FILE: IP ranges file ${ranges}: not an IP address or CIDR range: `),
    ]);
    replaceWith(ranges, "203.0.113.0/24\n");
    await api.serving();
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
