import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { emptiedKeysFile } from "./attacks/emptied-keys-file.ts";
import { keyInUrl } from "./attacks/key-in-url.ts";
import { newlineBomb } from "./attacks/newline-bomb.ts";
import { slowBodies } from "./attacks/slow-bodies.ts";
import { ISSUE_BARS, rowFailures } from "./report.ts";
import { runHostile } from "./run.ts";

// The smaller part of `npm run test:hostile`: four of its attacks, shorter phases, the same bars, against
// `npm start` on the test engines (a topic and database of its own).
describe("hostile traffic stops no valid ingestion, opens nothing, and loses or double-counts nothing", () => {
  it("slow bodies, a newline bomb, a query key in URLs and an emptied keys file, each beside a paced valid load", async () => {
    const id = randomBytes(4).toString("hex");
    // The issue's bars, but 6 s phases beside the rest of the suite on 2 cores put the valid p99 at tens of ms,
    // where twice it is scheduling noise (117 ms against 46 ms, once): a p99 up to 250 ms over its baseline also
    // passes. The attacks this guards against cost seconds (issue 19: 1.0-8.3 s); npm run test:hostile keeps 2×.
    const bars = { ...ISSUE_BARS, p99SlackMs: 250 };
    const { KAFKA_BROKERS, VALKEY_URL, CLICKHOUSE_URL } = inject("stackEnv");
    const result = await runHostile({
      attacks: [slowBodies, newlineBomb, keyInUrl, emptiedKeysFile],
      phaseSeconds: 6,
      warmupSeconds: 3,
      settleSeconds: 15,
      dataDir: join(repoRoot, ".data/hostile-ci"),
      engines: { KAFKA_BROKERS, VALKEY_URL, CLICKHOUSE_URL },
      appEnv: {
        KAFKA_TOPIC: `hostile-${id}`,
        KAFKA_DLQ_TOPIC: `hostile-${id}.dlq`,
        KAFKA_CONSUMER_GROUP: `hostile-${id}`,
        KAFKA_PARTITIONS: "4",
        CLICKHOUSE_DATABASE: `hostile_${id}`,
      },
      load: { eventsPerSecond: 200, batchesPerSecond: 10, batchSize: 20 },
      bars,
      log: () => {},
    });
    console.log(result.markdown);
    expect(result.rows.map((row) => ({ attack: row.attack, failures: rowFailures(row, bars) }))).toEqual(
      result.rows.map((row) => ({ attack: row.attack, failures: [] })),
    );
    expect({ lost: result.counts.lost, doubleCounted: result.counts.doubleCounted }).toEqual({
      lost: 0,
      doubleCounted: 0,
    });
    expect(result.countProblems).toEqual([]);
  }, 300_000);
});
