import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { AppError } from "../errors.ts";
import { Admission, type BodyAccount } from "./admission.ts";

/** An account that records what the admission tells it. */
function reader(admission: Admission, name: string, log: string[]) {
  const account = admission.open();
  const heard: { expired?: AppError } = {};
  account.listen({
    resume: () => log.push(`${name} resumes`),
    expire: (error) => {
      heard.expired = error;
      log.push(`${name} expires: ${error.code}`);
    },
  });
  return { account, heard };
}

/** An Admission with these limits, the log its accounts write to, and `open(name)` for a new recording account. */
function admitting(limits: ConstructorParameters<typeof Admission>[0]) {
  const admission = new Admission(limits);
  const log: string[] = [];
  const open = (name: string) => reader(admission, name, log);
  /** An account whose body of `bytes` is complete and is being processed: it holds its bytes and a turn. */
  const processing = async (name: string, bytes: number) => {
    const { account } = open(name);
    account.charge(bytes);
    await process(account);
    return account;
  };
  return { admission, log, open, processing };
}

/** The account's body is complete and it takes its turn. */
async function process(account: BodyAccount): Promise<void> {
  account.received();
  await account.turn();
}

describe("Admission: bytes", () => {
  it("counts the bytes received, not the bytes declared: many slow senders hold only what they sent", () => {
    const { admission, open } = admitting({ maxBytes: 100, maxBatches: 16, maxWaitMs: 1_000 });
    // 40 senders that sent one byte each of bodies declared far larger.
    const stalled = Array.from({ length: 40 }, (_, n) => open(`slow-${n}`).account);
    for (const account of stalled) expect(account.charge(1)).toBe(true);
    const honest = open("honest").account;
    expect(honest.charge(50)).toBe(true);
    expect(admission.bytes).toBe(90);
    for (const account of stalled) account.close();
    expect(admission.bytes).toBe(50);
  });

  it("pauses a body that finds no room, and lets bodies in, in order, as answered requests give bytes back", async () => {
    const { admission, log, open } = admitting({ maxBytes: 100, maxBatches: 16, maxWaitMs: 1_000 });
    const first = open("first").account;
    expect(first.charge(90)).toBe(true);
    await process(first);
    const second = open("second").account;
    const third = open("third").account;
    expect(second.charge(20)).toBe(false);
    expect(third.charge(20)).toBe(false);
    expect(log).toEqual([]);
    first.close();
    // 60 bytes of room: both are let in (each counted as up to one socket read until it charges).
    expect(log).toEqual(["second resumes", "third resumes"]);
    expect(admission.bytes).toBe(40);
    second.close();
    third.close();
    expect(admission.bytes).toBe(0);
  });

  it("lets the first in line read on past the bound when the waiting bodies hold all of it and none is processed", () => {
    const { log, open } = admitting({ maxBytes: 100, maxBatches: 16, maxWaitMs: 1_000 });
    const a = open("a").account;
    const b = open("b").account;
    expect(a.charge(60)).toBe(true);
    expect(b.charge(30)).toBe(true);
    // a goes over: nothing is being processed, so nothing would ever give bytes back; a reads on alone.
    expect(a.charge(30)).toBe(true);
    expect(b.charge(30)).toBe(false);
    expect(a.charge(500)).toBe(true);
    a.received();
    // a is processed now and will give its bytes back: b waits for that.
    expect(log).toEqual([]);
    a.close();
    expect(log).toEqual(["b resumes"]);
  });

  it("never lets a second body past the bound while the first one's bytes are still held", async () => {
    const { log, open } = admitting({ maxBytes: 100, maxBatches: 16, maxWaitMs: 1_000 });
    const big = open("big").account;
    expect(big.charge(400)).toBe(true);
    await process(big);
    const next = open("next").account;
    expect(next.charge(10)).toBe(false);
    big.close();
    expect(log).toEqual(["next resumes"]);
  });

  it("answers 503 overloaded to a body that waited maxWaitMs for room, and gives its bytes back", async () => {
    const { admission, open, processing } = admitting({ maxBytes: 100, maxBatches: 16, maxWaitMs: 50 });
    await processing("holder", 100);
    const waiter = open("waiter");
    const started = Date.now();
    expect(waiter.account.charge(10)).toBe(false);
    await sleep(120);
    expect(waiter.heard.expired).toMatchObject({ code: "overloaded", retryable: true });
    expect(Date.now() - started).toBeLessThan(500);
    waiter.account.close();
    expect(admission.bytes).toBe(100);
  });

  it("tells a body waiting for room that it is over when its request ends (the sender hung up)", async () => {
    const { admission, open, processing } = admitting({ maxBytes: 10, maxBatches: 16, maxWaitMs: 1_000 });
    await processing("holder", 10);
    const quitter = open("quitter");
    expect(quitter.account.charge(5)).toBe(false);
    quitter.account.close();
    expect(quitter.heard.expired).toMatchObject({ code: "sender_gone" });
    expect(admission.bytes).toBe(10);
  });
});

describe("Admission: turns", () => {
  it("processes up to maxBatches at once and gives the next turn in arrival order", async () => {
    const { open } = admitting({ maxBytes: 1_000, maxBatches: 2, maxWaitMs: 1_000 });
    const [a, b, c, d] = ["a", "b", "c", "d"].map((name) => open(name).account) as BodyAccount[];
    await process(a as BodyAccount);
    await process(b as BodyAccount);
    const order: string[] = [];
    const third = process(c as BodyAccount).then(() => order.push("c"));
    const fourth = process(d as BodyAccount).then(() => order.push("d"));
    await sleep(20);
    expect(order).toEqual([]);
    (a as BodyAccount).close();
    await third;
    expect(order).toEqual(["c"]);
    (b as BodyAccount).close();
    await fourth;
    expect(order).toEqual(["c", "d"]);
  });

  it("counts the wait for room and the wait for a turn together against maxWaitMs", async () => {
    const { log, open } = admitting({ maxBytes: 100, maxBatches: 1, maxWaitMs: 150 });
    const turnHolder = open("turn holder").account;
    await process(turnHolder);
    const bytesHolder = open("bytes holder").account;
    bytesHolder.charge(100);
    const waiter = open("waiter").account;
    expect(waiter.charge(10)).toBe(false);
    await sleep(100);
    bytesHolder.close();
    expect(log).toEqual(["waiter resumes"]);
    // The one turn is still held: the waiter may wait for it only what is left of its 150 ms.
    waiter.received();
    const started = Date.now();
    await expect(waiter.turn()).rejects.toMatchObject({ code: "overloaded" });
    expect(Date.now() - started).toBeLessThan(100);
  });

  it("refuses a turn to a request that ended while it waited, and passes the turn on", async () => {
    const { open } = admitting({ maxBytes: 1_000, maxBatches: 1, maxWaitMs: 1_000 });
    const holder = open("holder").account;
    await process(holder);
    const quitter = open("quitter").account;
    quitter.received();
    const refused = expect(quitter.turn()).rejects.toMatchObject({ code: "sender_gone" });
    const next = open("next").account;
    next.received();
    const granted = next.turn();
    quitter.close();
    await refused;
    holder.close();
    await expect(granted).resolves.toBeUndefined();
  });
});
