import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiProcess, startApi } from "../../test/support/api-process.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { postHead, type RawSender, rawSender } from "../../test/support/raw-http.ts";
import { waitFor } from "../../test/support/wait.ts";
import { buildApp } from "../api/app.ts";
import { Keyring } from "../auth/keyring.ts";
import { hashSecret, type KeysFile } from "../auth/keys-file.ts";
import { createGate } from "../http/access-hooks.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

// Hostile senders against the budgets of every connection and body (docs/API.md, "Timeouts and limits").
const suffix = randomUUID().slice(0, 8);
const topics = {
  ...ownTopics("budgets"),
  KAFKA_PARTITIONS: "2",
  API_ROLE: "ingest",
};
const config = testConfig(topics);
const createdAt = "2026-11-24T10:00:00.000Z";
const keysFile: KeysFile = {
  version: 1,
  keys: [
    { name: "alpha", scope: "ingest", sha256: hashSecret("ing-alpha"), createdAt },
    { name: "beta", scope: "ingest", sha256: hashSecret("ing-beta"), createdAt },
  ],
};
let producer: ImpressionProducer;
const apps: FastifyInstance[] = [];
const senders: RawSender[] = [];

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
});
afterAll(async () => {
  for (const sender of senders) sender.socket.destroy();
  await Promise.all(apps.map((app) => app.close()));
  await producer?.close();
});

/** An ingest API on a free port with `overrides` over the test config (keys on when `keys` is given). */
async function serve(overrides: Record<string, string>, keys?: KeysFile): Promise<number> {
  const own = testConfig({ ...topics, ...overrides, ...(keys ? { AUTH: "required" } : {}) });
  const keyring = keys && new Keyring(keys);
  const app = await buildApp({
    config: own,
    producer,
    checks: {},
    gate: createGate(own, keyring && { current: () => keyring }),
    logger: false,
  });
  apps.push(app);
  return Number(new URL(await app.listen({ host: "127.0.0.1", port: 0 })).port);
}

/** A raw sender (closed after the file's tests). */
async function sender(port: number, text: string): Promise<RawSender> {
  const opened = await rawSender(port, text);
  senders.push(opened);
  return opened;
}

const impression = () => makeImpression(suffix);

/** Sends with fetch and times the answer. */
async function timedPost(port: number, path: string, body: string, headers: Record<string, string> = {}) {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const json = (await response.json()) as { error?: string };
  return { status: response.status, error: json.error, ms: performance.now() - started };
}

/** Until an /event gets its 202: the producer has its connection and the topic's metadata. */
async function warmUp(port: number): Promise<void> {
  await waitFor("a first 202 from /event", 30_000, async () => {
    const answer = await timedPost(port, "/event", JSON.stringify(impression()));
    return answer.status === 202 ? true : undefined;
  });
}

/** CPU time (user and system) the process `pid` has used so far, in ms (Linux: /proc/<pid>/stat, 100 ticks a second). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Whether `sender` still waits for an answer after `ms` (the server neither answered nor closed). */
async function stillOpen(sender: RawSender, ms: number): Promise<boolean> {
  return Promise.race([sender.outcome.then(() => false), sleep(ms).then(() => true)]);
}

describe("slow and stalled bodies", () => {
  it("40 senders stalled in their bodies do not keep /events or /event from a prompt 202", async () => {
    // A long grace: the stalled senders stay connected, holding whatever they hold, for the whole test.
    const port = await serve({ BODY_GRACE_MS: "30000" });
    await warmUp(port);
    const stalled = await Promise.all(
      Array.from({ length: 40 }, () => sender(port, `${postHead("/events", 8 * 1024 * 1024)}[`)),
    );
    await sleep(300);
    const batch = () => JSON.stringify(Array.from({ length: 100 }, impression));
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, () => timedPost(port, "/events", batch())),
      ...Array.from({ length: 8 }, () => timedPost(port, "/event", JSON.stringify(impression()))),
    ]);
    // Before byte-counted admission these were 503 overloaded after a 1 s wait: the stalled senders held every turn.
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer)).toBe(202);
      expect(answer.ms).toBeLessThan(2_000);
    }
    for (const sender of stalled) expect(await stillOpen(sender, 0)).toBe(true);
  });

  it("cuts a body slower than the minimum rate with 408 request_timeout once its grace is over, and closes it", async () => {
    const port = await serve({ BODY_GRACE_MS: "500", BODY_MIN_BYTES_PER_SECOND: "4096" });
    const stalledBatch = await sender(port, `${postHead("/events", 8 * 1024 * 1024)}[`);
    const stalledEvent = await sender(port, `${postHead("/event", 500)}{"id":`);
    const trickle = await sender(port, `${postHead("/events", 100_000, "application/x-ndjson")}`);
    // 500 bytes/s: never quite stalled, far below the minimum.
    const dripping = setInterval(() => trickle.socket.write("\n".repeat(50)), 100);
    try {
      for (const stalled of [stalledBatch, stalledEvent, trickle]) {
        const outcome = await stalled.outcome;
        expect(outcome).toMatchObject({ status: 408, body: { error: "request_timeout" }, closesConnection: true });
        expect(outcome.body?.message).toMatch(/slower than 4096 bytes\/s/);
        // Not before its grace; within the grace, a sweep (250 ms) and some slack for a busy machine.
        expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(450);
        expect(outcome.closedAfterMs).toBeLessThan(2_000);
      }
    } finally {
      clearInterval(dripping);
    }
  });

  it("lets a body that keeps arriving above the minimum rate take longer than its grace", async () => {
    const port = await serve({ BODY_GRACE_MS: "300", BODY_MIN_BYTES_PER_SECOND: "4096" });
    const events = Array.from({ length: 200 }, impression);
    const body = Buffer.from(events.map((event) => `${JSON.stringify(event)}\n`).join(""));
    const steady = await sender(port, postHead("/events", body.length, "application/x-ndjson"));
    // About 25 KB/s for most of a second, in small pieces (many chunks, joined as they come): six times the
    // minimum, three times the grace.
    steady.socket.setNoDelay(true);
    for (let at = 0; at < body.length; at += 256) {
      steady.socket.write(body.subarray(at, at + 256));
      await sleep(10);
    }
    expect(await steady.answer).toMatchObject({ status: 202, body: { accepted: 200 } });
  });

  it("cuts a sender whose headers do not arrive within HTTP_HEADERS_TIMEOUT_MS with 408 request_timeout", async () => {
    const port = await serve({ HTTP_HEADERS_TIMEOUT_MS: "500" });
    const slowHeaders = await sender(port, "POST /events HTTP/1.1\r\nHost: localhost\r\nContent-Ty");
    const outcome = await slowHeaders.outcome;
    expect(outcome).toMatchObject({ status: 408, body: { error: "request_timeout" } });
    // The timeout, then Node's check of every connection each second.
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(450);
    expect(outcome.closedAfterMs).toBeLessThan(2_500);
  });
});

describe("the admission's byte budget", () => {
  it("gives back every request's bytes however it ends: answered, refused, or its sender gone mid-body", async () => {
    const port = await serve({});
    // 1 MB of items that are no events (400 all_events_rejected, nothing for Kafka): 20 of them are 20 MB, more
    // than the 16 MiB all batches may hold at once, so any bytes not given back end in 503s.
    const junk = JSON.stringify(Array.from({ length: 100 }, () => ({ note: "x".repeat(10_000) })));
    const refused = async () => {
      for (let n = 0; n < 20; n++) {
        const answer = await timedPost(port, "/events", junk);
        expect(answer.error).toBe("all_events_rejected");
      }
    };
    await refused();
    for (let n = 0; n < 20; n++) {
      const quitter = await sender(port, `${postHead("/events", junk.length)}${junk.slice(0, 900_000)}`);
      await sleep(20);
      quitter.socket.destroy();
      await quitter.outcome;
    }
    await refused();
  });
});

describe("bodies at once per client and per key", () => {
  it("answers 429 too_many_bodies at once to a client over INGEST_BODIES_PER_IP, and a hang-up frees its place", async () => {
    const port = await serve({ INGEST_BODIES_PER_IP: "3", BODY_GRACE_MS: "30000" });
    const head = `${postHead("/events", 1_000)}[`;
    const held = [await sender(port, head), await sender(port, head), await sender(port, head)];
    await sleep(100);
    const over = await sender(port, head);
    const outcome = await over.outcome;
    expect(outcome).toMatchObject({ status: 429, body: { error: "too_many_bodies" }, closesConnection: true });
    expect(outcome.body?.message).toContain("127.0.0.1");
    expect(outcome.closedAfterMs).toBeLessThan(1_000);
    for (const one of held) expect(await stillOpen(one, 0)).toBe(true);

    held[0]?.socket.destroy();
    await held[0]?.outcome;
    await sleep(50);
    const next = await sender(port, head);
    expect(await stillOpen(next, 300)).toBe(true);
  });

  it("answers 429 too_many_bodies to a key over INGEST_BODIES_PER_KEY, whatever its clients, and not to another key", async () => {
    const port = await serve({ INGEST_BODIES_PER_KEY: "2", BODY_GRACE_MS: "30000" }, keysFile);
    const head = (key: string) => `${postHead("/events", 1_000, "application/json", { "x-api-key": key })}[`;
    const held = [await sender(port, head("ing-alpha")), await sender(port, head("ing-alpha"))];
    await sleep(100);
    const over = await (await sender(port, head("ing-alpha"))).outcome;
    expect(over).toMatchObject({ status: 429, body: { error: "too_many_bodies" } });
    expect(over.body?.message).toContain('key "alpha"');
    const other = await sender(port, head("ing-beta"));
    expect(await stillOpen(other, 300)).toBe(true);
    for (const one of held) expect(await stillOpen(one, 0)).toBe(true);
  });
});

describe("bombs", () => {
  let api: ApiProcess;
  beforeAll(async () => {
    // Its own process, as npm start runs it: the bombs' cost lands on its event loop, not on the test's.
    api = await startApi(config, { ...topics, API_KEYS_FILE: "/nonexistent/keys.json", AUTH: "off" });
  });
  afterAll(() => api?.kill());

  /** Posts `body` with node:http (which reads an early answer while it still sends), timing the answer. */
  function postBomb(path: string, contentType: string, body: Buffer) {
    const started = performance.now();
    let answered = false;
    return new Promise<{ status: number; error: string; ms: number }>((resolve, reject) => {
      const sent = request(
        `${api.url}${path}`,
        { method: "POST", headers: { "content-type": contentType, "content-length": body.length } },
        (response) => {
          answered = true;
          let text = "";
          response.on("data", (chunk) => {
            text += chunk;
          });
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              error: JSON.parse(text).error,
              ms: performance.now() - started,
            }),
          );
        },
      );
      // The server closes the connection after its early answer: the rest of the body has nowhere to go. A write
      // can fail (EPIPE, ECONNRESET) before the client has read that answer: the bomb was cut, a refusal too.
      sent.on("error", (error) => {
        const code = (error as NodeJS.ErrnoException).code;
        if (answered) return;
        if (code === "EPIPE" || code === "ECONNRESET")
          resolve({ status: 0, error: "cut", ms: performance.now() - started });
        else reject(error);
      });
      sent.end(body);
    });
  }

  it("refuses newline and JSON-array bombs with 413 as they arrive, while a concurrent /event answers promptly", async () => {
    const tenMb = 10 * 1024 * 1024 - 16;
    const newlines = Buffer.alloc(tenMb, "\n");
    const zeros = Buffer.from(`[${"0,".repeat(tenMb / 2 - 1)}0]`);
    const objects = Buffer.from(`[${"{},".repeat(tenMb / 3 - 1)}{}]`);
    const port = Number(new URL(api.url).port);
    await warmUp(port);
    // /event from three senders, one after another each, while the bombs go off, each timed.
    const eventTimes: number[] = [];
    let bombing = true;
    const sendEvents = async () => {
      while (bombing) {
        const answer = await timedPost(port, "/event", JSON.stringify(impression()));
        expect(answer.status).toBe(202);
        eventTimes.push(answer.ms);
      }
    };
    const events = Promise.all([sendEvents(), sendEvents(), sendEvents()]);
    await waitFor("an /event answered", 5_000, () => (eventTimes.length > 0 ? true : undefined), 5);
    const cpuBefore = await cpuMs(api.child.pid as number);
    const bombs = await Promise.all([
      postBomb("/events", "application/x-ndjson", newlines),
      postBomb("/events", "application/x-ndjson", newlines),
      postBomb("/events", "application/json", zeros),
      postBomb("/events", "text/plain", objects),
    ]);
    const bombsCpu = (await cpuMs(api.child.pid as number)) - cpuBefore;
    await sleep(100);
    bombing = false;
    await events;
    // Answered 413 or cut before the client read the answer; never taken.
    expect(bombs.some((bomb) => bomb.status === 413)).toBe(true);
    for (const bomb of bombs) {
      if (bomb.status !== 0) expect(bomb).toMatchObject({ status: 413, error: "too_many_events" });
      // Before the scan, each took 1.8-3.8 s: the whole 10 MB split into millions of items first.
      expect(bomb.ms).toBeLessThan(1_000);
    }
    // The API's own CPU for the four bombs and the /events beside them (before the scan: seconds per bomb).
    expect(bombsCpu).toBeLessThan(500);
    // An idle machine answers these in a few ms; the bound leaves room for one shared with other test runs.
    expect(eventTimes.length).toBeGreaterThan(3);
    expect(Math.max(...eventTimes), eventTimes.map(Math.round).join(" ")).toBeLessThan(1_000);
  });
});
