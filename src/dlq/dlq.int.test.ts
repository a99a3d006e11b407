import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, Producer, stringSerializers } from "@platformatic/kafka";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { groupDrained, ownTopicsConfig } from "../../test/support/kafka.ts";
import type { Config } from "../config.ts";
import { encodeImpression } from "../impression/codec.ts";
import { DeadLetters } from "../worker/dead-letters.ts";
import { createWorker, type Worker } from "../worker/worker.ts";
import type { DlqFilters } from "./args.ts";
import { runDlq } from "./commands.ts";

const PARTITIONS = 2;
const db = useTestDatabase(() => testConfig());
/** The impressions topic of this file (its DLQ is `<name>.dlq`). */
let name: string;
let config: Config;
let worker: Worker;
/** The dead letters' Kafka timestamps are after this: the worker's come before it, the older worker's after. */
let between: number;
/** Before the worker's poison was produced: its dead letters' `produced` time is between this and `between`. */
let poisonSent: number;
/** When the API accepted the events the older worker dead-lettered (their envelopes' source timestamp). */
let acceptedAt: number;
const replayIds = ["dlqr-1", "dlqr-2", "dlqr-3"];

/** Every offset of `topic`'s partitions' ends, to tell that a command wrote nothing. */
async function ends(topic: string): Promise<bigint[]> {
  const probe = new Consumer({
    clientId: "dlq-test",
    groupId: `${name}-probe`,
    bootstrapBrokers: config.KAFKA_BROKERS,
  });
  try {
    return (await probe.listOffsets({ topics: [topic] })).get(topic) ?? [];
  } finally {
    await probe.close();
  }
}

/** Until the worker's group committed every message of the impressions topic. */
const drained = () => groupDrained(config.KAFKA_BROKERS, config.KAFKA_CONSUMER_GROUP, config.KAFKA_TOPIC, PARTITIONS);

async function stored(prefix: string) {
  const result = await db.clickhouse.query({
    query: `SELECT count() AS rows, uniqExact(id) AS distinct,
        (SELECT sum(impressions) FROM impressions_per_minute WHERE ad_id = 'dlqr') AS rollup
      FROM impressions WHERE startsWith(id, {prefix:String})`,
    query_params: { prefix },
    format: "JSONEachRow",
  });
  const [row] = await result.json<Record<string, string>>();
  return { rows: Number(row?.rows), distinct: Number(row?.distinct), rollup: Number(row?.rollup) };
}

/** Runs a command as `npm run dlq` would, its report and progress collected. */
async function dlq(command: "list" | "show" | "replay", filters: Partial<DlqFilters> = {}) {
  const lines: string[] = [];
  const progress: string[] = [];
  const summary = await runDlq(command, { since: undefined, reason: undefined, limit: undefined, ...filters }, config, {
    line: (text) => lines.push(text),
    progress: (text) => progress.push(text),
    progressEveryMs: 1,
  });
  return { lines, progress, summary };
}

beforeAll(async () => {
  config = await ownTopicsConfig("dlq", db.config.CLICKHOUSE_DATABASE, { KAFKA_PARTITIONS: String(PARTITIONS) });
  name = config.KAFKA_TOPIC;
  worker = createWorker(config, pino({ level: "silent" }));
  await worker.start();

  // Poison the worker dead-letters itself: not JSON, and a ts that is not a number.
  const producer = new Producer({
    clientId: "dlq-test",
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
    idempotent: true,
  });
  poisonSent = Date.now();
  await producer.send({
    messages: [
      { topic: config.KAFKA_TOPIC, key: "bad-json", value: "{not json" },
      {
        topic: config.KAFKA_TOPIC,
        key: "bad-ts",
        value: JSON.stringify({ id: "bad-ts", ts: "yesterday", userId: "u", adId: "a" }),
      },
    ],
  });
  await producer.close();
  await drained();
  between = Date.now() + 1;
  await sleep(5);

  // Valid events an older worker dead-lettered (a rule since relaxed), and one from another topic.
  acceptedAt = Date.now() - 60_000;
  const older = new Producer({
    clientId: "dlq-test",
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
  });
  const poison = [
    ...replayIds.map((id, i) => ({ topic: config.KAFKA_TOPIC, offset: 1_000n + BigInt(i), id })),
    { topic: "elsewhere", offset: 7n, id: "dlqr-elsewhere" },
  ].map(({ topic, offset, id }) => ({
    position: { topic, partition: 0, offset },
    timestamp: BigInt(acceptedAt),
    code: "invalid_impression" as const,
    reason: "invalid impression: adId: a rule of an older worker",
    key: id,
    value: encodeImpression({ id, ts: acceptedAt - 1_000, userId: "u1", adId: "dlqr" }),
  }));
  await new DeadLetters(older, config.KAFKA_DLQ_TOPIC).send(poison);
  await older.close();
}, 120_000);

afterAll(async () => {
  await worker?.stop();
});

describe("npm run dlq", () => {
  it("list: every dead letter, with where it came from and why, filtered by time, reason and count; writes nothing", async () => {
    const before = await Promise.all([ends(config.KAFKA_TOPIC), ends(config.KAFKA_DLQ_TOPIC)]);
    const all = await dlq("list");
    expect(all.lines).toHaveLength(7);
    // Progress goes to its own stream (stderr), the report to stdout.
    expect(all.progress.length).toBeGreaterThan(0);
    expect(all.progress.every((line) => /^read \d+ of 6 dead letters, \d+ matching$/.test(line))).toBe(true);
    expect(all.lines.at(-1)).toBe(
      `6 dead letters in ${config.KAFKA_DLQ_TOPIC} (invalid_impression 5, malformed_json 1)`,
    );
    // Why (the code, then the reason) and when the original message was produced, beside where it came from.
    const malformed = all.lines.find((line) => line.includes("key=bad-json"));
    const listed = new RegExp(
      `from ${name} \\d:\\d+ {2}produced (\\S+) {2}key=bad-json {2}malformed_json {2}malformed JSON`,
    );
    expect(malformed).toMatch(listed);
    const producedAt = Date.parse(listed.exec(malformed ?? "")?.[1] ?? "");
    expect(producedAt).toBeGreaterThanOrEqual(poisonSent);
    expect(producedAt).toBeLessThan(between);
    expect(all.lines.find((line) => line.includes("key=dlqr-1"))).toContain(
      `from ${name} 0:1000  produced ${new Date(acceptedAt).toISOString()}  key=dlqr-1  invalid_impression  `,
    );

    expect((await dlq("list", { reason: "malformed_json" })).lines).toHaveLength(2);
    expect((await dlq("list", { reason: "TS: " })).lines.filter((l) => l.includes("key="))).toEqual([
      expect.stringContaining("key=bad-ts"),
    ]);
    expect((await dlq("list", { reason: "older worker" })).lines).toHaveLength(5);
    expect((await dlq("list", { limit: 2 })).lines.filter((l) => l.includes("key="))).toHaveLength(2);
    const since = await dlq("list", { since: between });
    expect(
      since.lines
        .filter((l) => l.includes("key="))
        .map((l) => /key=(\S+)/.exec(l)?.[1])
        .sort(),
    ).toEqual([...replayIds, "dlqr-elsewhere"]);
    expect((await dlq("list", { since: Date.now() + 60_000 })).lines).toEqual([
      expect.stringMatching(new RegExp(`^no dead letters in ${config.KAFKA_DLQ_TOPIC} since .* match$`)),
    ]);
    expect(await Promise.all([ends(config.KAFKA_TOPIC), ends(config.KAFKA_DLQ_TOPIC)])).toEqual(before);
  });

  it("show: the envelope whole (why, where from, when produced), the message's value and the headers", async () => {
    const { lines } = await dlq("show", { reason: "malformed_json" });
    expect(lines[0]).toMatch(/^dead letter \d:\d+, written \d{4}-\d{2}-\d{2}T/);
    expect(lines[0]).toContain("  reason:   malformed JSON");
    expect(lines[0]).toContain("  code:     malformed_json\n");
    expect(lines[0]).toMatch(new RegExp(`\n {2}source: {3}${name} \\d:\\d+\n`));
    const producedAt = Date.parse(/\n {2}produced: (\S+)\n/.exec(lines[0] ?? "")?.[1] ?? "");
    expect(producedAt).toBeGreaterThanOrEqual(poisonSent);
    expect(producedAt).toBeLessThan(between);
    expect(lines[0]).toContain("  key:      bad-json\n");
    expect(lines[0]).toContain("  value:    {not json\n");
    expect(lines[0]).toContain("  headers:  x-dlq-reason=malformed JSON");
    const older = await dlq("show", { reason: "older worker", limit: 1 });
    expect(older.lines[0]).toContain(`  produced: ${new Date(acceptedAt).toISOString()}\n`);
  });

  it("replay: writes what is valid now, skips the rest saying why; run twice, each event is counted once", async () => {
    const first = await dlq("replay");
    expect(first.summary).toMatchObject({ matched: 6, replayed: 3 });
    expect(first.progress.at(-1)).toMatch(/^read \d+ of 6 dead letters, \d+ matching, replayed \d+, skipped \d+$/);
    expect(first.summary?.skipped.map((s) => s.why).sort()).toEqual([
      `came from topic elsewhere, not ${name}`,
      expect.stringMatching(/^still invalid: invalid impression: ts/),
      expect.stringMatching(/^still invalid: malformed JSON/),
    ]);
    expect(first.lines.at(-1)).toBe(
      `replayed 3 of 6 dead letters in ${config.KAFKA_DLQ_TOPIC} to ${name}; skipped 3 (listed above)`,
    );
    await drained();
    expect(await stored("dlqr-")).toEqual({ rows: 3, distinct: 3, rollup: 3 });

    const again = await dlq("replay", { reason: "older worker" });
    expect(again.summary).toMatchObject({ matched: 4, replayed: 3 });
    await drained();
    expect(await stored("dlqr-")).toEqual({ rows: 3, distinct: 3, rollup: 3 });
  });

  it("says what is wrong with the command line (exit 2), or with Kafka (exit 1)", () => {
    const cli = join(repoRoot, "src/dlq/cli.ts");
    const wrong = spawnSync(process.execPath, [cli, "purge"], { encoding: "utf8", env: process.env });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('dlq: unknown command "purge"');
    expect(wrong.stderr).toContain("usage: npm run dlq -- <command>");
    const missing = spawnSync(process.execPath, [cli, "list"], {
      encoding: "utf8",
      env: { ...process.env, KAFKA_BROKERS: config.KAFKA_BROKERS.join(","), KAFKA_DLQ_TOPIC: `${name}.nowhere` },
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`dlq: no topic ${name}.nowhere`);
  });
});
