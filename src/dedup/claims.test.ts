import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "iovalkey";
import { afterAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { ClaimStore, type Position } from "./claims.ts";

const config = testConfig();
const redis = new Redis(config.VALKEY_URL);
const prefix = `claims-test:${randomBytes(4).toString("hex")}:`;
const at = (offset: number, partition = 0): Position => ({ topic: "t", partition, offset: BigInt(offset) });
const store = (owner: string, takeoverAfterMs = 60_000, windowSeconds = 60) =>
  new ClaimStore(redis, { keyPrefix: prefix, windowSeconds, owner, takeoverAfterMs });

afterAll(() => redis.disconnect());

describe("claims in Valkey", () => {
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
