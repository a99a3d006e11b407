import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as kafka from "@platformatic/kafka";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { compressRecords, createProduceRequest, refusalOf } from "./produce-adapter.ts";

/**
 * The contract of src/kafka/produce-adapter.ts with @platformatic/kafka's undocumented surface, without a broker
 * (produce-adapter.int.test.ts checks the rest against one). Each failure names the hook: an upgrade that breaks
 * it must be read against produce-adapter.ts before the pin in package.json moves.
 */
const HOOKS = "src/kafka/produce-adapter.ts relies on";

describe("@platformatic/kafka's version", () => {
  it("is pinned to one exact version in package.json and the lock, and that version is the one installed", () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8"));
    const pinned: string = manifest.dependencies["@platformatic/kafka"];
    expect(pinned, `${HOOKS} the library's internals: package.json must pin an exact version`).toMatch(
      /^\d+\.\d+\.\d+$/,
    );
    expect(lock.packages[""].dependencies["@platformatic/kafka"], "package-lock.json's root must pin it too").toBe(
      pinned,
    );
    expect(lock.packages["node_modules/@platformatic/kafka"].version, "package-lock.json locks another version").toBe(
      pinned,
    );
    const installed = JSON.parse(
      readFileSync(join(repoRoot, "node_modules/@platformatic/kafka/package.json"), "utf8"),
    ).version;
    expect(installed, "the installed @platformatic/kafka is not the pinned one: run npm ci").toBe(pinned);
  });
});

describe("the hooks the producer uses", () => {
  it("kGetApi and kGetConnection: symbols, methods of every Producer", () => {
    expect(typeof kafka.kGetApi, `${HOOKS} kGetApi, exported as a symbol`).toBe("symbol");
    expect(typeof kafka.kGetConnection, `${HOOKS} kGetConnection, exported as a symbol`).toBe("symbol");
    expect(typeof kafka.Producer.prototype[kafka.kGetApi], `${HOOKS} Producer#[kGetApi](name, callback)`).toBe(
      "function",
    );
    expect(
      typeof kafka.Producer.prototype[kafka.kGetConnection],
      `${HOOKS} Producer#[kGetConnection](broker, callback)`,
    ).toBe("function");
  });

  it("produceV11 and createAPI: the Produce v11 API, its parser, and a way to build an API from them", () => {
    expect(kafka.produceV11.api.key, `${HOOKS} produceV11.api.key, the Produce API key 0`).toBe(0);
    expect(kafka.produceV11.api.version, `${HOOKS} produceV11.api.version 11`).toBe(11);
    expect(typeof kafka.produceV11.parseResponse, `${HOOKS} produceV11.parseResponse`).toBe("function");
    const api = kafka.createAPI(0, 11, () => kafka.Writer.create(), kafka.produceV11.parseResponse);
    expect(typeof api, `${HOOKS} createAPI(key, version, createRequest, parseResponse) returning a function`).toBe(
      "function",
    );
    expect(typeof api.async, `${HOOKS} createAPI(...).async(connection, ...args)`).toBe("function");
    expect(api.version, `${HOOKS} createAPI(...).version`).toBe(11);
  });

  it("ResponseError.response: a refused partition's answer comes whole with the error the parser throws", () => {
    // A Produce v11 answer: one topic, partition 4 refused with NOT_ENOUGH_REPLICAS (19) and a message.
    const body = kafka.Writer.create()
      .appendArray(["impressions"], (topic, name) => {
        topic.appendString(name).appendArray([4], (partition, index) => {
          partition
            .appendInt32(index)
            .appendInt16(19)
            .appendInt64(-1n)
            .appendInt64(-1n)
            .appendInt64(0n)
            .appendArray([], () => {})
            .appendString("too few in sync")
            .appendTaggedFields();
        });
      })
      .appendInt32(0)
      .appendTaggedFields();
    let thrown: unknown;
    try {
      kafka.produceV11.parseResponse(1, 0, 11, kafka.Reader.from(body.buffer));
    } catch (error) {
      thrown = error;
    }
    expect(thrown, `${HOOKS} produceV11.parseResponse throwing a ResponseError for a refused partition`).toBeInstanceOf(
      kafka.ResponseError,
    );
    const response = (thrown as { response?: { responses?: { partitionResponses?: unknown[] }[] } }).response;
    expect(
      response?.responses?.[0]?.partitionResponses?.[0],
      `${HOOKS} ResponseError.response holding every partition's index, errorCode and errorMessage`,
    ).toMatchObject({ index: 4, errorCode: 19, errorMessage: "too few in sync" });
  });

  it("protocolErrors: the retriable refusals are known and retriable, the others not", () => {
    expect(refusalOf(6, null), `${HOOKS} protocolErrorsCodesById/protocolErrors: NOT_LEADER_OR_FOLLOWER`).toEqual({
      retriable: true,
      reason: "NOT_LEADER_OR_FOLLOWER",
    });
    expect(refusalOf(19, "x"), `${HOOKS} protocolErrors: NOT_ENOUGH_REPLICAS retriable`).toEqual({
      retriable: true,
      reason: "NOT_ENOUGH_REPLICAS: x",
    });
    expect(refusalOf(10, null).retriable, `${HOOKS} protocolErrors: MESSAGE_TOO_LARGE not retriable`).toBe(false);
    expect(refusalOf(32_000, null)).toEqual({ retriable: false, reason: "error 32000" });
  });

  it("Writer, compressionsAlgorithms and crc32c: what the record batches and requests are written with", () => {
    for (const method of [
      "appendString",
      "appendInt16",
      "appendInt32",
      "appendArray",
      "appendUnsignedVarInt",
      "append",
      "appendTaggedFields",
    ]) {
      expect(
        typeof (kafka.Writer.prototype as unknown as Record<string, unknown>)[method],
        `${HOOKS} Writer#${method}`,
      ).toBe("function");
    }
    expect(createProduceRequest(-1, 1_000, "t", []).buffer, `${HOOKS} Writer#buffer`).toBeInstanceOf(Buffer);
    expect(createProduceRequest(0, 1_000, "t", []).context.noResponse, `${HOOKS} Writer#context.noResponse`).toBe(true);
    for (const compression of ["lz4", "snappy", "zstd", "gzip"] as const) {
      const [bytes, bitmask] = compressRecords(Buffer.from("records".repeat(50)), compression);
      expect(bitmask, `${HOOKS} compressionsAlgorithms.${compression}.bitmask`).toBeGreaterThan(0);
      expect(bytes, `${HOOKS} compressionsAlgorithms.${compression}.compressSync`).toBeInstanceOf(Buffer);
    }
    // The CRC-32C check value of "123456789".
    expect(kafka.crc32c(Buffer.from("123456789")), `${HOOKS} crc32c`).toBe(0xe3069283);
  });
});
