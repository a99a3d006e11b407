import { randomBytes } from "node:crypto";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, consumerCommitsChannel, instancesChannel, type MessagesStream } from "@platformatic/kafka";
import { type Logger, pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { topicWithMessages } from "../../test/support/kafka.ts";
import { waitFor } from "../../test/support/wait.ts";
import { BatchConsumer, type BatchConsumerOptions, type PartitionBatch } from "./consumer.ts";

const { KAFKA_BROKERS: brokers } = testConfig();
const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

/** A consumer of topic `name` in group `<name>-group`, stopped when the test ends. */
function testConsumer(
  name: string,
  options: Pick<BatchConsumerOptions, "handle" | "logger"> & Partial<BatchConsumerOptions>,
) {
  const consumer = new BatchConsumer({
    brokers,
    clientId: name,
    groupId: `${name}-group`,
    topic: name,
    maxBatchEvents: 100,
    maxWaitMs: 100,
    ...options,
  });
  closing.push(() => consumer.stop());
  return consumer;
}

/** The offset group `<name>-group` committed for partition 0 of topic `name`, -1 if none. */
async function committedOffset(name: string): Promise<bigint> {
  const probe = new Consumer({ clientId: `${name}-probe`, groupId: `${name}-group`, bootstrapBrokers: brokers });
  try {
    const commits = await probe.listCommittedOffsets({ topics: [{ topic: name, partitions: [0] }] });
    return commits.get(name)?.[0] ?? -1n;
  } finally {
    await probe.close();
  }
}

/** A logger that counts the consumer's "partitions assigned" lines: one per group join. */
function joinCounter() {
  let joins = 0;
  const sink = new Writable({
    write(line: Buffer, _encoding, done) {
      if (line.toString().includes("kafka: partitions assigned")) joins++;
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), joins: () => joins };
}

describe("BatchConsumer", () => {
  it("hands a batch deferred across a rebalance over again for the partition it keeps", async () => {
    const name = `consumer-${randomBytes(4).toString("hex")}`;
    await topicWithMessages(
      brokers,
      name,
      Array.from({ length: 20 }, (_, i) => i % 2),
    );
    const stored = new Set<string>();
    const members: BatchConsumer[] = [];
    const member = (logger: Logger) => {
      const consumer = testConsumer(name, { handle, logger });
      members.push(consumer);
      return consumer;
    };
    const first = joinCounter();
    let calls = 0;
    const handle = async (batch: PartitionBatch[]) => {
      calls++;
      if (calls === 1) {
        // The claims of this batch are busy (another worker holds them); while it waits, a second member
        // joins and the group rebalances: each member keeps or gets one of the two partitions.
        const joined = first.joins();
        await member(pino({ level: "warn" })).start();
        await waitFor("the first member's rejoin", 30_000, () => (first.joins() > joined ? true : undefined));
        return { deferred: batch.map((b) => b.partition) };
      }
      for (const { partition, messages } of batch) for (const m of messages) stored.add(`${partition}:${m.offset}`);
      return { deferred: [] };
    };
    await member(first.logger).start();

    await waitFor("all 20 messages stored", 30_000, () => (stored.size === 20 ? true : undefined));
    expect(members).toHaveLength(2);
  }, 60_000);

  it("stops within its timeouts while the handling of the batch in hand never ends", async () => {
    const name = `consumer-${randomBytes(4).toString("hex")}`;
    await topicWithMessages(brokers, name, [0]);
    let handed = false;
    const consumer = testConsumer(name, {
      stopTimeoutMs: 1_000,
      leaveTimeoutMs: 2_000,
      // An engine that took the request and never answers.
      handle: () => {
        handed = true;
        return new Promise(() => {});
      },
      logger: pino({ level: "silent" }),
    });
    await consumer.start();
    await waitFor("the batch handed over", 30_000, () => (handed ? true : undefined));
    const started = performance.now();
    await consumer.stop();
    expect(performance.now() - started).toBeLessThan(1_000 + 2_000 + 500);
  }, 60_000);

  it("starts over from the committed offsets, and says so, when an owned partition with lag receives nothing", async () => {
    const name = `consumer-${randomBytes(4).toString("hex")}`;
    await topicWithMessages(brokers, name, [0, 0, 0]);
    // The library's message streams, as its diagnostics channel announces them: the fault is injected there.
    const streams: MessagesStream<Buffer, Buffer, Buffer, Buffer>[] = [];
    const onInstance = (message: unknown) => {
      const { type, instance } = message as { type: string; instance: MessagesStream<Buffer, Buffer, Buffer, Buffer> };
      if (type === "messages-stream") streams.push(instance);
    };
    subscribe(instancesChannel.name, onInstance);
    closing.push(async () => unsubscribe(instancesChannel.name, onInstance));
    const stored = new Set<bigint>();
    const starved: number[][] = [];
    const consumer = testConsumer(name, {
      lagLogIntervalMs: 1_500,
      onStarved: (partitions) => starved.push(partitions),
      handle: async (batch) => {
        for (const m of batch.flatMap((b) => b.messages)) stored.add(m.offset);
        return { deferred: [] };
      },
      logger: pino({ level: "silent" }),
    });
    await consumer.start();
    await waitFor("the first 3 messages stored", 30_000, () => (stored.size === 3 ? true : undefined));
    expect(starved).toEqual([]);

    // The library stops fetching behind the consumer's back (it still believes the stream flows), and 3 more
    // messages arrive on the partition: lag, nothing pending, no commit.
    streams.at(-1)?.pause();
    await topicWithMessages(brokers, name, [0, 0, 0]);
    await waitFor("the last 3 messages stored", 30_000, () => (stored.size === 6 ? true : undefined));
    expect(starved).toEqual([[0]]);
    expect(streams.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("commits a stored batch whose commit failed, though no message comes after it", async () => {
    const name = `consumer-${randomBytes(4).toString("hex")}`;
    await topicWithMessages(brokers, name, [0, 0, 0]);
    // The commit of the batch is refused by the broker: the test rewrites it, through the client's diagnostics
    // channel, to name a partition the topic does not have.
    let refuse = true;
    const start = (message: unknown) => {
      const context = message as {
        client: { groupId: string };
        options: { offsets: { partition: number; offset: bigint }[] };
      };
      if (!refuse || context.client.groupId !== `${name}-group`) return;
      if (!context.options.offsets.some((o) => o.offset === 3n)) return;
      refuse = false;
      context.options.offsets = context.options.offsets.map((o) => ({ ...o, partition: 99 }));
    };
    consumerCommitsChannel.start.subscribe(start);
    closing.push(async () => consumerCommitsChannel.start.unsubscribe(start));
    const handed: bigint[][] = [];
    const starved: number[][] = [];
    const consumer = testConsumer(name, {
      onStarved: (partitions) => starved.push(partitions),
      handle: async (batch) => {
        handed.push(batch.flatMap((b) => b.messages.map((m) => m.offset)));
        return { deferred: [] };
      },
      logger: pino({ level: "silent" }),
    });
    await consumer.start();
    await waitFor("the group's commit of all 3 messages", 8_000, async () =>
      (await committedOffset(name)) === 3n ? true : undefined,
    );
    expect(refuse).toBe(false);
    // Handed over again after the refused commit, as a replay, then committed; the starvation net never fired.
    expect(handed).toEqual([
      [0n, 1n, 2n],
      [0n, 1n, 2n],
    ]);
    expect(starved).toEqual([]);
  }, 60_000);

  it("a partition of a group with no commit yet, taken away and given back, is read again from its start", async () => {
    const name = `consumer-${randomBytes(4).toString("hex")}`;
    await topicWithMessages(brokers, name, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    // Until `storing`, every batch is deferred (its claims busy elsewhere): nothing is committed.
    let storing = false;
    const stored = new Map<number, bigint[]>([
      [0, []],
      [1, []],
    ]);
    const handle = async (batch: PartitionBatch[]) => {
      if (!storing) return { deferred: batch.map((b) => b.partition) };
      for (const { partition, messages } of batch) stored.get(partition)?.push(...messages.map((m) => m.offset));
      return { deferred: [] };
    };
    const first = joinCounter();
    const a = testConsumer(name, { handle, logger: first.logger });
    await a.start();
    // A has read both partitions (5 messages each, pending), then B joins and gets one of them, then leaves.
    await sleep(1_000);
    const b = testConsumer(name, { handle, logger: pino({ level: "silent" }) });
    await b.start();
    await waitFor("A's rejoin with B", 30_000, () => (first.joins() >= 2 ? true : undefined));
    await sleep(1_000);
    await b.stop();
    await waitFor("A's rejoin alone", 30_000, () => (first.joins() >= 3 ? true : undefined));

    storing = true;
    await topicWithMessages(brokers, name, [0, 1]);
    await waitFor("A to store 6 messages of each partition", 20_000, () =>
      [...stored.values()].every((offsets) => new Set(offsets).size === 6) ? true : undefined,
    );
    for (const offsets of stored.values()) expect([...new Set(offsets)].sort()).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
  }, 90_000);
});
