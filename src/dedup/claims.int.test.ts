import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Cluster } from "iovalkey";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { startValkeyCluster, type ValkeyCluster } from "../../stack/valkey.ts";
import { testConfig } from "../../test/support/config.ts";
import { ClaimStore, type Position } from "./claims.ts";
import { createValkey, type ValkeyClient } from "./valkey.ts";

const config = testConfig();
const prefix = `claims-test:${randomBytes(4).toString("hex")}:`;
const at = (offset: number, partition = 0): Position => ({ topic: "t", partition, offset: BigInt(offset) });
// Fixed ports: a cluster node also listens on its port + 10000; both stay below the ephemeral port range.
const CLUSTER_PORTS = [17001, 17002, 17003];
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

const modes: [string, () => Promise<ValkeyClient>][] = [
  ["one Valkey server", () => connected(createValkey(config))],
  [
    "a Valkey cluster of 3 primaries",
    () => connected(createValkey({ ...config, VALKEY_URL: cluster.urls.join(","), VALKEY_CLUSTER: true })),
  ],
];

describe.each(modes)("claims in %s", (_, connect) => {
  let valkey: ValkeyClient;
  beforeAll(async () => {
    valkey = await connect();
  }, 60_000);
  const store = (owner: string, takeoverAfterMs = 60_000, windowSeconds = 60) =>
    new ClaimStore(valkey, { keyPrefix: prefix, windowSeconds, owner, takeoverAfterMs });

  it("an unseen id is new, a copy at another position is a duplicate", async () => {
    const a = store("w1");
    expect(await a.claim([{ id: "x1", position: at(1) }])).toEqual(["new"]);
    expect(await a.claim([{ id: "x1", position: at(7) }])).toEqual(["duplicate"]);
    expect(await store("w2").claim([{ id: "x1", position: at(9, 3) }])).toEqual(["duplicate"]);
  });

  it("the same position again is a replay for its owner and busy for another worker until the takeover time", async () => {
    await store("w1", 300).claim([{ id: "r1", position: at(5) }]);
    expect(await store("w1", 300).claim([{ id: "r1", position: at(5) }])).toEqual(["replay"]);
    expect(await store("w2", 300).claim([{ id: "r1", position: at(5) }])).toEqual(["busy"]);
    await sleep(350);
    expect(await store("w2", 300).claim([{ id: "r1", position: at(5) }])).toEqual(["replay"]);
    // Taken over: now the first worker must wait.
    expect(await store("w1", 300).claim([{ id: "r1", position: at(5) }])).toEqual(["busy"]);
  });

  it("answers many ids in order, across several script calls", async () => {
    const items = Array.from({ length: 12_000 }, (_, i) => ({ id: `m${i}`, position: at(100 + i, 1) }));
    await store("w1").claim(items.filter((_, i) => i % 3 === 0));
    const outcomes = await store("w1").claim(
      items.map((item, i) => (i % 3 === 0 ? { ...item, position: at(1) } : item)),
    );
    expect(outcomes.filter((o) => o === "duplicate")).toHaveLength(4_000);
    expect(outcomes.every((o, i) => o === (i % 3 === 0 ? "duplicate" : "new"))).toBe(true);
  });

  it("a claim expires with the window, then the id is new again; takeover keeps the original expiry", async () => {
    expect(await store("w1", 0, 1).claim([{ id: "e1", position: at(1) }])).toEqual(["new"]);
    await sleep(400);
    expect(await store("w2", 0, 1).claim([{ id: "e1", position: at(1) }])).toEqual(["replay"]);
    await sleep(800);
    expect(await store("w2", 0, 1).claim([{ id: "e1", position: at(2) }])).toEqual(["new"]);
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
    const outcomes = await owner.claim(Array.from({ length: 1_000 }, (_, i) => ({ id: `s${i}`, position: at(i) })));
    expect(outcomes.every((o) => o === "new")).toBe(true);
    const keysPerNode = await Promise.all(
      (valkey as Cluster).nodes("master").map((node) => node.keys(`${prefix}spread:*`).then((keys) => keys.length)),
    );
    expect(keysPerNode).toHaveLength(3);
    expect(keysPerNode.every((n) => n > 0)).toBe(true);
    expect(keysPerNode.reduce((a, b) => a + b, 0)).toBe(1_000);
  });
});
