import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { useIngestApp } from "../../test/support/ingest-app.ts";
import { readTopic } from "../../test/support/kafka.ts";
import type { Summary } from "./stats.ts";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
const config = testConfig({
  ...ownTopics("load"),
  KAFKA_PARTITIONS: "4",
  API_ROLE: "ingest",
});
const ingest = useIngestApp(config);
let url: string;
beforeAll(async () => {
  await ingest.app.listen({ host: "127.0.0.1", port: 0 });
  const address = ingest.app.server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  url = `http://127.0.0.1:${address.port}`;
});

/** The CLI as `npm run load` runs it; async, so that this process's API keeps answering. */
async function load(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, "--url", url, ...args], { encoding: "utf8" });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("npm run load against a real API and Kafka", () => {
  it("sends 500 events with 10% duplicates and 5% invalid: the summary adds up, the topic holds the accepted", async () => {
    const { code, stdout, stderr } = await load(
      "--json",
      "--events",
      "500",
      "--duplicates",
      "0.1",
      "--invalid",
      "0.05",
    );
    expect(code, stderr).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0] ?? "") as Summary;
    const { events, requests } = summary;
    expect(summary).toMatchObject({ route: "event", stoppedBy: "events", ok: true, errors: [] });
    expect(events.sent).toBe(500);
    expect(events.accepted + events.rejected).toBe(events.sent);
    expect(events.rejected).toBe(events.invalid);
    expect(events.rejected).toBeGreaterThanOrEqual(8);
    expect(events.rejected).toBeLessThanOrEqual(50);
    expect(events.duplicates).toBeGreaterThanOrEqual(20);
    expect(events.duplicates).toBeLessThanOrEqual(85);
    expect(events.unexpected).toBe(0);
    expect(requests).toMatchObject({ sent: 500, failed: 0, networkErrors: 0, serverErrors: 0 });
    expect(requests.byStatus).toEqual({ 202: events.accepted, 400: events.rejected });
    expect(summary.latencyMs.p50).toBeGreaterThan(0);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);

    // Exactly the accepted events on the topic (the duplicates too: the workers drop them), no more.
    const messages = await readTopic(
      config.KAFKA_BROKERS,
      config.KAFKA_TOPIC,
      (seen) => seen.length > events.accepted,
      8_000,
    );
    expect(messages).toHaveLength(events.accepted);
    expect(new Set(messages.map((m) => m.key)).size).toBe(events.accepted - events.duplicates);
  });

  it("sends batches to POST /events and pixels to GET /pixel.gif", async () => {
    const batches = await load("--json", "--route", "events", "--batch", "20", "--events", "100", "--invalid", "0.1");
    expect(batches.code, batches.stderr).toBe(0);
    const b = JSON.parse(batches.stdout) as Summary;
    expect(b.requests.sent).toBe(5);
    expect(b.events.accepted + b.events.rejected).toBe(100);
    expect(b.events.rejected).toBe(b.events.invalid);

    const pixels = await load("--json", "--route", "pixel", "--events", "50", "--late", "0.5", "--invalid", "0.1");
    expect(pixels.code, pixels.stderr).toBe(0);
    const p = JSON.parse(pixels.stdout) as Summary;
    expect(p.events.accepted + p.events.rejected).toBe(50);
    expect(p.events.rejected).toBe(p.events.invalid);
    expect(p.events.late).toBeGreaterThan(5);
  });

  it("paces --rate and prints a human summary", async () => {
    const { code, stdout } = await load("--rate", "100", "--duration", "2", "--concurrency", "4");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^POST \/event at http:\/\/127\.0\.0\.1:\d+: 2\.\d s, stopped by duration/);
    expect(stdout).toContain("result:   ok");
    const sent = Number(/sent ([\d,]+) =/.exec(stdout)?.[1]?.replace(/,/g, ""));
    // Never above the rate (plus the 100 ms burst); below it by what a slow first request (new connections,
    // a cold process) leaves beyond the burst the schedule may catch up, which on a machine busy with the
    // rest of the suite has been 137 of 200.
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(sent).toBeLessThanOrEqual(215);
  });

  it("says when --rate is out of reach, why and what to change; on stderr too with --json", async () => {
    const { code, stdout } = await load("--rate", "1000000", "--duration", "1.5", "--concurrency", "1");
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /\n {10}NOT the 1,000,000 events\/s asked for \(\d+%\): 1 request in flight × 1 event each ÷ [\d.]+ ms mean latency \(p50 [\d.]+ ms\) allow about [\d,]+ events\/s\n/,
    );
    expect(stdout).toMatch(
      /\n {10}to reach it: --concurrency \d+ or more \(1,000,000 events\/s × [\d.]+ ms ÷ 1 event a request\)/,
    );
    expect(stdout.trimEnd().split("\n").at(-1)).toBe(
      'result:   ok, but NOT at the rate asked for (1,000,000 events/s): see "rate" above',
    );

    const json = await load("--json", "--rate", "1000000", "--duration", "1.2", "--concurrency", "1");
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as Summary;
    expect(summary.rateShortfall).toMatchObject({
      asked: 1_000_000,
      change: expect.stringMatching(/^--concurrency \d+ or more/),
    });
    expect(json.stderr).toContain("[load] NOT the 1,000,000 events/s asked for");
  });

  it("exits 1 when the requests fail (nothing listens) and 2 for a bad flag", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await run(process.execPath, [cli, "--url", closed, "--events", "20", "--json"]).catch(
      (e: { code: number; stdout: string }) => e,
    );
    expect((down as { code?: number }).code).toBe(1);
    const summary = JSON.parse((down as { stdout: string }).stdout) as Summary;
    expect(summary).toMatchObject({ ok: false, requests: { networkErrors: 20, failed: 20 } });
    const bad = await load("--rate", "lots");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--rate must be a number above 0");
    expect(bad.stdout).toBe("");
  });
});
