import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import { Redis } from "iovalkey";
import { describe, expect, inject, it } from "vitest";
import { startClickHouse } from "./clickhouse.ts";
import { freePort } from "./process.ts";
import { startValkey } from "./valkey.ts";

const env = inject("stackEnv");
const suffix = `${process.pid}_${Date.now()}`;

describe("the test stack's engines are real", () => {
  it("Kafka: a message produced is consumed back with its key", async () => {
    const brokers = env.KAFKA_BROKERS.split(",");
    const topic = `engines-${suffix}`;
    const admin = new Admin({ clientId: "engines-test", bootstrapBrokers: brokers });
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    await admin.close();

    const producer = new Producer({
      clientId: "engines-test",
      bootstrapBrokers: brokers,
      serializers: stringSerializers,
    });
    await producer.send({ messages: [{ topic, key: "k1", value: "hello" }] });
    await producer.close();

    const consumer = new Consumer({
      groupId: `engines-${suffix}`,
      clientId: "engines-test",
      bootstrapBrokers: brokers,
      deserializers: stringDeserializers,
    });
    const stream = await consumer.consume({ topics: [topic], mode: "earliest" });
    for await (const message of stream) {
      expect([message.key, message.value]).toEqual(["k1", "hello"]);
      break;
    }
    await stream.close();
    await consumer.close();
  });

  it("Valkey: a key written with a TTL reads back and carries the TTL", async () => {
    const valkey = new Redis(env.VALKEY_URL);
    await valkey.set(`engines:${suffix}`, "v", "EX", 60);
    expect(await valkey.get(`engines:${suffix}`)).toBe("v");
    const ttl = await valkey.ttl(`engines:${suffix}`);
    expect(ttl).toBeGreaterThan(55);
    expect(ttl).toBeLessThanOrEqual(60);
    valkey.disconnect();
  });

  it("ClickHouse: rows inserted are counted", async () => {
    const client = createClient({ url: env.CLICKHOUSE_URL });
    const table = `engines_${suffix}`;
    await client.command({ query: `CREATE TABLE ${table} (n UInt32) ENGINE = MergeTree ORDER BY n` });
    await client.insert({ table, values: Array.from({ length: 1000 }, (_, n) => ({ n })), format: "JSONEachRow" });
    const rows = await (
      await client.query({ query: `SELECT count() AS c FROM ${table}`, format: "JSONEachRow" })
    ).json<{ c: string }>();
    expect(Number(rows[0]?.c)).toBe(1000);
    await client.close();
  });
});

describe("engines keep their data across a stop and a start", () => {
  const dir = mkdtempSync(join(tmpdir(), "engines-restart-"));

  it("ClickHouse rows survive a restart", async () => {
    const options = { port: await freePort(), dataDir: join(dir, "clickhouse"), logFile: join(dir, "clickhouse.log") };
    let engine = await startClickHouse(options);
    let client = createClient({ url: engine.url });
    await client.command({ query: "CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n" });
    await client.insert({ table: "kept", values: [{ n: 1 }, { n: 2 }, { n: 3 }], format: "JSONEachRow" });
    await client.close();
    await engine.stop();

    engine = await startClickHouse(options);
    client = createClient({ url: engine.url });
    const rows = await (await client.query({ query: "SELECT sum(n) AS s FROM kept", format: "JSONEachRow" })).json<{
      s: string;
    }>();
    expect(Number(rows[0]?.s)).toBe(6);
    await client.close();
    await engine.stop();
  });

  it("Valkey keys (with their TTL) survive a restart and a kill -9, through the append-only file", async () => {
    const options = { port: await freePort(), dataDir: join(dir, "valkey"), logFile: join(dir, "valkey.log") };
    let engine = await startValkey(options);
    let valkey = new Redis(engine.url);
    await valkey.set("kept", "1", "EX", 3600);
    valkey.disconnect();
    await engine.stop();

    engine = await startValkey(options);
    valkey = new Redis(engine.url);
    expect(await valkey.get("kept")).toBe("1");
    await valkey.set("kept-after-crash", "2", "EX", 3600);
    valkey.disconnect();
    await engine.kill();

    engine = await startValkey(options);
    valkey = new Redis(engine.url);
    expect(await valkey.get("kept-after-crash")).toBe("2");
    expect(await valkey.ttl("kept")).toBeGreaterThan(3500);
    valkey.disconnect();
    await engine.stop();
  });
});
