import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { Cluster } from "iovalkey";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { repoRoot, testPort } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { startValkeyCluster, type ValkeyCluster } from "../../stack/valkey.ts";
import { testConfig } from "../../test/support/config.ts";
import { ManualClock } from "../../test/support/manual-clock.ts";
import type { Config } from "../config.ts";
import { ClaimStore, claimKey, type Position } from "./claims.ts";
import { OwnerLease, OwnerLeaseLostError, type OwnerLeaseOptions } from "./owner-lease.ts";
import { createValkey, type ValkeyClient } from "./valkey.ts";

const config = testConfig();
const prefix = `claims-test:${randomBytes(4).toString("hex")}:`;
const leasePrefix = `${prefix}worker:`;
const at = (offset: number, partition = 0): Position => ({ topic: "t", partition, offset: BigInt(offset) });
// Fixed ports: a cluster node also listens on its port + 10000; both stay below the ephemeral port range.
const CLUSTER_PORTS = [17001, 17002, 17003].map(testPort);
let cluster: ValkeyCluster;
const clients: ValkeyClient[] = [];

beforeAll(async () => {
  cluster = await startValkeyCluster({ ports: CLUSTER_PORTS, dataDir: join(repoRoot, ".data/test/valkey-cluster") });
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await cluster.stop();
});

async function connected(client: ValkeyClient): Promise<ValkeyClient> {
  clients.push(client);
  if (client.status !== "ready") await once(client, "ready");
  return client;
}

const modes: [string, () => Config][] = [
  ["one Valkey server", () => config],
  ["a Valkey cluster of 3 primaries", () => ({ ...config, VALKEY_URL: cluster.urls.join(","), VALKEY_CLUSTER: true })],
];

/** What a worker process does, in a child process of its own: lease its slot's name, claim one id, stay up. */
const SLOT_PROCESS = `
const { OwnerLease } = await import(process.env.LEASE_MODULE);
const { ClaimStore } = await import(process.env.CLAIMS_MODULE);
const { createValkey } = await import(process.env.VALKEY_MODULE);
const { pino } = await import("pino");
const valkey = createValkey({ VALKEY_URL: process.env.VALKEY_URL, VALKEY_CLUSTER: process.env.VALKEY_CLUSTER === "true" });
const lease = await OwnerLease.acquire(valkey, {
  keyPrefix: process.env.LEASE_PREFIX, identity: process.env.IDENTITY, ttlMs: 60000,
  insertTimeoutMs: Number(process.env.INSERT_TIMEOUT_MS), onLost() {}, logger: pino({ level: "silent" }),
});
const store = new ClaimStore(valkey, { keyPrefix: process.env.CLAIM_PREFIX, windowSeconds: 60, owner: lease, takeoverAfterMs: 60000 });
const [outcome] = process.env.ID
  ? await store.claim([{ key: process.env.ID, position: { topic: "t", partition: 0, offset: 5n } }])
  : [];
if (process.env.SETTLE === "yes") {
  lease.settled();
  await valkey.get(process.env.LEASE_PREFIX + lease.name);
}
console.log(JSON.stringify({ name: lease.name, stable: lease.stable, outcome }));
setInterval(() => {}, 60000);
`;
const moduleUrl = (file: string) => pathToFileURL(join(repoRoot, "src/dedup", file)).href;
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

/**
 * A worker process of slot `identity` that took its lease, claimed `id` at position t:0:5 (none if ''), and is
 * still running; `settled`: its lease says every insert of it was answered.
 */
async function slotProcess(
  valkeyConfig: Config,
  identity: string,
  id: string,
  settled: boolean,
  insertTimeoutMs = 1_000,
) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SLOT_PROCESS], {
    cwd: repoRoot,
    env: {
      ...process.env,
      LEASE_MODULE: moduleUrl("owner-lease.ts"),
      CLAIMS_MODULE: moduleUrl("claims.ts"),
      VALKEY_MODULE: moduleUrl("valkey.ts"),
      VALKEY_URL: valkeyConfig.VALKEY_URL,
      VALKEY_CLUSTER: String(valkeyConfig.VALKEY_CLUSTER),
      LEASE_PREFIX: leasePrefix,
      CLAIM_PREFIX: prefix,
      IDENTITY: identity,
      ID: id,
      SETTLE: settled ? "yes" : "no",
      INSERT_TIMEOUT_MS: String(insertTimeoutMs),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
  const said = JSON.parse(line) as { name: string; stable: boolean; outcome: string };
  return {
    ...said,
    /** SIGKILL, as a crash; resolves once the process is gone (and reaped). */
    kill: async () => {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

describe.each(modes)("claims in %s", (_, modeConfig) => {
  let valkey: ValkeyClient;
  let valkeyConfig: Config;
  beforeAll(async () => {
    valkeyConfig = modeConfig();
    valkey = await connected(createValkey(valkeyConfig));
  }, 60_000);
  const store = (owner: string | OwnerLease, takeoverAfterMs = 60_000, windowSeconds = 60) =>
    new ClaimStore(valkey, { keyPrefix: prefix, windowSeconds, owner, takeoverAfterMs });
  const lease = (identity: string, options: Partial<OwnerLeaseOptions> = {}) =>
    OwnerLease.acquire(valkey, {
      keyPrefix: leasePrefix,
      identity,
      ttlMs: 60_000,
      insertTimeoutMs: 5_000,
      onLost: () => {},
      logger: pino({ level: "silent" }),
      ...options,
    });
  const slot = () => `slot-${randomBytes(3).toString("hex")}`;
  const keyOf = (id: string) => claimKey(prefix, id, valkeyConfig.VALKEY_CLUSTER);
  /** Valkey's clock, which stamps the claims and the leases' `until-<ms>`, in milliseconds. */
  const valkeyNow = async () => {
    const [seconds, micros] = await valkey.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };
  /** The claim of `id` as Valkey holds it `ms` later: its stamp moved back, its TTL kept. */
  async function ageClaim(id: string, ms: number) {
    const [position, owner, stampedAt] = ((await valkey.get(keyOf(id))) ?? "").split("|");
    await valkey.set(keyOf(id), `${position}|${owner}|${Number(stampedAt) - ms}`, "KEEPTTL", "XX");
  }

  it("an unseen id is new, a copy at another position is a duplicate", async () => {
    const a = store("w1");
    expect(await a.claim([{ key: "x1", position: at(1) }])).toEqual(["new"]);
    expect(await a.claim([{ key: "x1", position: at(7) }])).toEqual(["duplicate"]);
    expect(await store("w2").claim([{ key: "x1", position: at(9, 3) }])).toEqual(["duplicate"]);
  });

  it("the same position again is a replay for its owner and busy for another worker until the takeover time", async () => {
    const takeover = 60_000;
    await store("w1", takeover).claim([{ key: "r1", position: at(5) }]);
    expect(await store("w1", takeover).claim([{ key: "r1", position: at(5) }])).toEqual(["replay"]);
    expect(await store("w2", takeover).claim([{ key: "r1", position: at(5) }])).toEqual(["busy"]);
    // As Valkey sees it once the takeover time has passed since the claim was stamped.
    await ageClaim("r1", takeover);
    expect(await store("w2", takeover).claim([{ key: "r1", position: at(5) }])).toEqual(["replay"]);
    // Taken over: now the first worker must wait.
    expect(await store("w1", takeover).claim([{ key: "r1", position: at(5) }])).toEqual(["busy"]);
  });

  it("answers many ids in order, across several script calls", async () => {
    const items = Array.from({ length: 12_000 }, (_, i) => ({ key: `m${i}`, position: at(100 + i, 1) }));
    await store("w1").claim(items.filter((_, i) => i % 3 === 0));
    const outcomes = await store("w1").claim(
      items.map((item, i) => (i % 3 === 0 ? { ...item, position: at(1) } : item)),
    );
    expect(outcomes.filter((o) => o === "duplicate")).toHaveLength(4_000);
    expect(outcomes.every((o, i) => o === (i % 3 === 0 ? "duplicate" : "new"))).toBe(true);
  });

  it("a claim expires with the window, then the id is new again; takeover keeps the original expiry", async () => {
    expect(await store("w1", 0, 60).claim([{ key: "e1", position: at(1) }])).toEqual(["new"]);
    const ttl = await valkey.pttl(keyOf("e1"));
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(ttl).toBeGreaterThan(50_000);
    // 55 s later, 5 s of the window left: a takeover keeps them, it does not start the window again.
    await valkey.pexpire(keyOf("e1"), 5_000);
    expect(await store("w2", 0, 60).claim([{ key: "e1", position: at(1) }])).toEqual(["replay"]);
    expect(await valkey.pttl(keyOf("e1"))).toBeLessThanOrEqual(5_000);
    // The window over, Valkey drops the claim: a copy at another position is new.
    await valkey.pexpireat(keyOf("e1"), 1);
    expect(await store("w2", 0, 60).claim([{ key: "e1", position: at(2) }])).toEqual(["new"]);
    expect(await valkey.pttl(keyOf("e1"))).toBeGreaterThan(50_000);
  });

  it("a restarted worker of a slot takes the name of its SIGKILLed predecessor and replays its claims at once", async () => {
    const identity = slot();
    const first = await slotProcess(valkeyConfig, identity, "k1", true);
    expect(first).toMatchObject({ name: identity, stable: true, outcome: "new" });
    await first.kill();
    const clock = new ManualClock();
    const next = await lease(identity, { clock });
    expect({ name: next.name, stable: next.stable }).toEqual({ name: identity, stable: true });
    // At once: neither the 60 s takeover time nor the 5 s insert timeout.
    expect(await clock.settle(store(next).claim([{ key: "k1", position: at(5) }]))).toEqual({
      value: ["replay"],
      slept: 0,
    });
  });

  it("a predecessor that died with claims whose insert may be landing: the next worker waits the insert timeout first", async () => {
    const identity = slot();
    const first = await slotProcess(valkeyConfig, identity, "k2", false);
    await first.kill();
    const clock = new ManualClock();
    const next = await lease(identity, { insertTimeoutMs: 1_500, clock });
    expect(await clock.settle(store(next).claim([{ key: "k2", position: at(5) }]))).toEqual({
      value: ["replay"],
      slept: 1_500,
    });
    // Its own claims settled, it no longer makes a successor wait.
    next.settled();
    await next.release();
    const third = await lease(identity, { clock });
    expect(await clock.settle(store(third).claim([{ key: "k2", position: at(5) }]))).toEqual({
      value: ["replay"],
      slept: 0,
    });
  });

  it("a worker that died while waiting for its predecessor's insert passes only the rest of that wait on", async () => {
    const identity = slot();
    await (await slotProcess(valkeyConfig, identity, "k5", false)).kill();
    // Takes the name over and waits 4 s before it may use a claim, until that moment on Valkey's clock.
    const before = await valkeyNow();
    const waiting = await slotProcess(valkeyConfig, identity, "", false, 4_000);
    const after = await valkeyNow();
    expect(waiting.stable).toBe(true);
    const held = (await valkey.get(`${leasePrefix}${identity}`)) ?? "";
    const until = Number(/\|until-(\d+)$/.exec(held)?.[1]);
    expect(until).toBeGreaterThanOrEqual(before + 4_000);
    expect(until).toBeLessThanOrEqual(after + 4_000);
    await waiting.kill();
    // Killed 2.5 s into that wait, as Valkey's clock will have it: 1.5 s of it left.
    await valkey.set(
      `${leasePrefix}${identity}`,
      held.replace(/until-\d+$/, `until-${until - 2_500}`),
      "KEEPTTL",
      "XX",
    );
    const clock = new ManualClock();
    const taking = await valkeyNow();
    const next = await lease(identity, { insertTimeoutMs: 4_000, clock });
    const taken = await valkeyNow();
    const { value, slept } = await clock.settle(store(next).claim([{ key: "k5", position: at(5) }]));
    expect(value).toEqual(["replay"]);
    // The rest of the wait (what is left of it when the name is taken), not 4 s afresh.
    expect(slept).toBeGreaterThanOrEqual(until - 2_500 - taken);
    expect(slept).toBeLessThanOrEqual(until - 2_500 - taking);
  });

  it("a live holder keeps its name: a second process of the slot claims under a name of its own, and waits", async () => {
    const identity = slot();
    const first = await slotProcess(valkeyConfig, identity, "k3", true);
    const second = await lease(identity);
    expect(second.stable).toBe(false);
    expect(second.name).not.toBe(identity);
    expect(await store(second).claim([{ key: "k3", position: at(5) }])).toEqual(["busy"]);
    await first.kill();
    // Another lease in this very process is alive too.
    const mine = await lease(slot());
    const alsoMine = await lease(mine.name);
    expect(alsoMine.stable).toBe(false);
  });

  it("keeps its name while idle past the lease time, and frees it at a stop", async () => {
    const identity = slot();
    const clock = new ManualClock();
    const holder = await lease(identity, { ttlMs: 60_000, clock });
    // 59 s on: the lease would lapse in a second, but the renewals every fifth of it set it again.
    await valkey.pexpire(`${leasePrefix}${identity}`, 1_000);
    clock.advance(12_000);
    await vi.waitFor(async () => expect(await valkey.pttl(`${leasePrefix}${identity}`)).toBeGreaterThan(50_000));
    expect((await lease(identity)).stable).toBe(false);
    await holder.release();
    expect((await lease(identity)).name).toBe(identity);
  });

  it("a process whose name was taken meanwhile (it stalled past the lease) gets no claim outcome, and is told to go", async () => {
    const identity = slot();
    let told = 0;
    const stalled = await lease(identity, { onLost: () => told++ });
    // The lease ran out during the stall and another process took the name.
    await valkey.set(`${leasePrefix}${identity}`, "elsewhere|1|t0|idle");
    await expect(store(stalled).claim([{ key: "k4", position: at(5) }])).rejects.toThrow(OwnerLeaseLostError);
    await expect(store(stalled).claim([{ key: "k4", position: at(5) }])).rejects.toThrow(OwnerLeaseLostError);
    expect(told).toBe(1);
  });
});

describe("a worker's name without Valkey", () => {
  it("a worker that cannot reach Valkey at start goes on under a name of its own after 5 s", async () => {
    const valkey = createValkey({ ...config, VALKEY_URL: `redis://127.0.0.1:${await freePort()}` });
    valkey.on("error", () => {});
    clients.push(valkey);
    const clock = new ManualClock();
    const { value: lease, slept } = await clock.settle(
      OwnerLease.acquire(valkey, {
        keyPrefix: leasePrefix,
        identity: "unreachable-0",
        ttlMs: 60_000,
        insertTimeoutMs: 5_000,
        onLost: () => {},
        logger: pino({ level: "silent" }),
        clock,
      }),
    );
    expect(lease.stable).toBe(false);
    // Retried with backoff (0.1 s doubling to 1 s) until 5 s had passed, then no longer.
    expect(slept).toBeGreaterThanOrEqual(5_000);
    expect(slept).toBeLessThan(6_000);
  });
});

describe("claims in a Valkey cluster", () => {
  it("spread over every node", async () => {
    const valkey = await connected(
      createValkey({ ...config, VALKEY_URL: cluster.urls.join(","), VALKEY_CLUSTER: true }),
    );
    const owner = new ClaimStore(valkey, {
      keyPrefix: `${prefix}spread:`,
      windowSeconds: 60,
      owner: "w1",
      takeoverAfterMs: 60_000,
    });
    const outcomes = await owner.claim(Array.from({ length: 1_000 }, (_, i) => ({ key: `s${i}`, position: at(i) })));
    expect(outcomes.every((o) => o === "new")).toBe(true);
    const keysPerNode = await Promise.all(
      (valkey as Cluster).nodes("master").map((node) => node.keys(`${prefix}spread:*`).then((keys) => keys.length)),
    );
    expect(keysPerNode).toHaveLength(3);
    expect(keysPerNode.every((n) => n > 0)).toBe(true);
    expect(keysPerNode.reduce((a, b) => a + b, 0)).toBe(1_000);
  });
});
