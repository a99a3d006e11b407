import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { ManualClock } from "../../test/support/manual-clock.ts";
import { currentPidSpace, parseHolder } from "./lease-holder.ts";
import { OwnerLease, OwnerLeaseLostError, type OwnerLeaseOptions } from "./owner-lease.ts";
import { createValkey, type ValkeyClient } from "./valkey.ts";

/**
 * OwnerLease on its own against a real Valkey: each holder's state is written into the lease's key directly, and
 * the lease's waits run on a manual clock, so nothing races a sleep against a TTL.
 */
const prefix = `owner-lease-test:${randomBytes(4).toString("hex")}:`;
const TTL_MS = 60_000;
const INSERT_TIMEOUT_MS = 5_000;
let valkey: ValkeyClient;
let deadPid: number;
const here = currentPidSpace();

beforeAll(async () => {
  valkey = createValkey(testConfig());
  if (valkey.status !== "ready") await once(valkey, "ready");
  // A pid of this pid space with no process behind it any more.
  const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
  await once(child, "exit");
  deadPid = child.pid as number;
});

afterAll(() => valkey.disconnect());

const slot = () => `slot-${randomBytes(3).toString("hex")}`;
const keyOf = (name: string) => prefix + name;
/** Valkey's clock, which the lease's `until-<ms>` is on. */
async function valkeyNow(): Promise<number> {
  const [seconds, micros] = await valkey.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
/** The lease as Valkey holds it: its holder and milliseconds to live. */
async function stored(name: string) {
  const value = await valkey.get(keyOf(name));
  return { holder: value === null ? undefined : parseHolder(value), ttl: await valkey.pttl(keyOf(name)) };
}

function acquire(identity: string, clock: ManualClock, options: Partial<OwnerLeaseOptions> = {}) {
  return OwnerLease.acquire(valkey, {
    keyPrefix: prefix,
    identity,
    ttlMs: TTL_MS,
    insertTimeoutMs: INSERT_TIMEOUT_MS,
    onLost: () => {},
    logger: pino({ level: "silent" }),
    clock,
    ...options,
  });
}

describe("OwnerLease.acquire", () => {
  it("takes a free name: this process holds it, idle, for the lease time", async () => {
    const identity = slot();
    const lease = await acquire(identity, new ManualClock());
    expect({ name: lease.name, stable: lease.stable }).toEqual({ name: identity, stable: true });
    const { holder, ttl } = await stored(identity);
    expect(holder).toMatchObject({ pidSpace: here, pid: process.pid, state: "idle" });
    expect(ttl).toBeLessThanOrEqual(TTL_MS);
    expect(ttl).toBeGreaterThan(TTL_MS - 10_000);
    await lease.release();
  });

  it("takes the name of a provably dead holder that was idle, and may use claims at once", async () => {
    const identity = slot();
    await valkey.set(keyOf(identity), `${here}|${deadPid}|old|idle`, "PX", TTL_MS);
    const clock = new ManualClock();
    const lease = await acquire(identity, clock);
    expect(lease.stable).toBe(true);
    expect((await stored(identity)).holder).toMatchObject({ pid: process.pid, state: "idle" });
    expect(await clock.settle(lease.claiming())).toEqual({ value: undefined, slept: 0 });
    await lease.release();
  });

  it("after a dead holder that had claimed: says until when its insert may land, and waits that out first", async () => {
    const identity = slot();
    await valkey.set(keyOf(identity), `${here}|${deadPid}|old|claimed`, "PX", TTL_MS);
    const clock = new ManualClock();
    const before = await valkeyNow();
    const lease = await acquire(identity, clock);
    const after = await valkeyNow();
    const { holder } = await stored(identity);
    const until = Number(/^until-(\d+)$/.exec(holder?.state ?? "")?.[1]);
    expect(until).toBeGreaterThanOrEqual(before + INSERT_TIMEOUT_MS);
    expect(until).toBeLessThanOrEqual(after + INSERT_TIMEOUT_MS);
    // Until then no claim may be used: settled() changes nothing yet.
    lease.settled();
    expect((await stored(identity)).holder?.state).toBe(`until-${until}`);
    expect(await clock.settle(lease.claiming())).toEqual({ value: undefined, slept: INSERT_TIMEOUT_MS });
    expect((await stored(identity)).holder?.state).toBe("claimed");
    lease.settled();
    await vi.waitFor(async () => expect((await stored(identity)).holder?.state).toBe("idle"));
    await lease.release();
  });

  it("after a dead holder that was itself waiting: passes on only the rest of that wait, or none once it is over", async () => {
    const identity = slot();
    const inherited = (await valkeyNow()) + 2_000;
    await valkey.set(keyOf(identity), `${here}|${deadPid}|old|until-${inherited}`, "PX", TTL_MS);
    const clock = new ManualClock();
    const taking = await valkeyNow();
    const lease = await acquire(identity, clock);
    const taken = await valkeyNow();
    expect((await stored(identity)).holder?.state).toBe(`until-${inherited}`);
    const { slept } = await clock.settle(lease.claiming());
    expect(slept).toBeLessThanOrEqual(inherited - taking);
    expect(slept).toBeGreaterThanOrEqual(inherited - taken);
    lease.settled();
    await lease.release();

    const over = slot();
    await valkey.set(keyOf(over), `${here}|${deadPid}|old|until-${(await valkeyNow()) - 1}`, "PX", TTL_MS);
    const next = await acquire(over, clock);
    expect((await stored(over)).holder?.state).toBe("idle");
    expect(await clock.settle(next.claiming())).toEqual({ value: undefined, slept: 0 });
    await next.release();
  });

  it("leaves a live holder's name alone, and one it cannot check (another host, this very process): a name of its own", async () => {
    for (const [who, value] of [
      ["a live process", `${here}|${process.ppid}|other|claimed`],
      ["another host", `elsewhere/1|${deadPid}|other|idle`],
      ["this process", `${here}|${process.pid}|other|idle`],
      ["an unreadable value", "garbage"],
    ]) {
      const identity = slot();
      await valkey.set(keyOf(identity), value as string, "PX", TTL_MS);
      const lease = await acquire(identity, new ManualClock());
      expect({ who, stable: lease.stable }).toEqual({ who, stable: false });
      expect(lease.name).not.toBe(identity);
      expect(await valkey.get(keyOf(identity)), who).toBe(value);
      await lease.release();
    }
  });
});

describe("an OwnerLease held", () => {
  it("is renewed every fifth of its time, keeping its state, and set again if it had lapsed", async () => {
    const identity = slot();
    const clock = new ManualClock();
    const lease = await acquire(identity, clock);
    await lease.claiming();
    await valkey.pexpire(keyOf(identity), 1_000);
    clock.advance(TTL_MS / 5);
    await vi.waitFor(async () => expect((await stored(identity)).ttl).toBeGreaterThan(TTL_MS - 10_000));
    expect((await stored(identity)).holder).toMatchObject({ pid: process.pid, state: "claimed" });
    // Lapsed (Valkey away, or this process stalled) and nobody took it: the next renewal sets it again.
    await valkey.del(keyOf(identity));
    clock.advance(TTL_MS / 5);
    await vi.waitFor(async () => expect((await stored(identity)).holder?.state).toBe("claimed"));
    lease.settled();
    await lease.release();
  });

  it("once another process holds it: rejects every claim, tells the process once, stops renewing", async () => {
    const identity = slot();
    const clock = new ManualClock();
    let told = 0;
    const lease = await acquire(identity, clock, { onLost: () => told++ });
    await valkey.set(keyOf(identity), `${here}|${process.ppid}|thief|idle`, "PX", TTL_MS);
    await expect(lease.claiming()).rejects.toThrow(OwnerLeaseLostError);
    await expect(lease.claiming()).rejects.toThrow(OwnerLeaseLostError);
    expect(told).toBe(1);
    expect(clock.timers).toBe(0);
    // Its release leaves the other holder's lease alone.
    await lease.release();
    expect((await stored(identity)).holder?.token).toBe("thief");
  });

  it("a renewal finds it lost too, without a claim", async () => {
    const identity = slot();
    const clock = new ManualClock();
    let told = 0;
    await acquire(identity, clock, { onLost: () => told++ });
    await valkey.set(keyOf(identity), `${here}|${process.ppid}|thief|idle`, "PX", TTL_MS);
    clock.advance(TTL_MS / 5);
    await vi.waitFor(() => expect(told).toBe(1));
    expect(clock.timers).toBe(0);
  });

  it("is released at a stop once idle, so the slot's next process takes it; kept while an insert may be landing", async () => {
    const idle = slot();
    const clock = new ManualClock();
    const first = await acquire(idle, clock);
    await first.release();
    expect(await valkey.exists(keyOf(idle))).toBe(0);
    expect(clock.timers).toBe(0);

    const busy = slot();
    const second = await acquire(busy, new ManualClock());
    await second.claiming();
    await second.release();
    expect((await stored(busy)).holder).toMatchObject({ pid: process.pid, state: "claimed" });
  });
});
