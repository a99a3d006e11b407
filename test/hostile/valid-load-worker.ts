import { Agent, request } from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import { CUT, describeAnswer, is2xx, type Outcome, TIMEOUT } from "./outcomes.ts";
import { eventJson, type LoadRecord, type LoadSettings, PROMPT_MS, type Pulse } from "./valid-load.ts";

/**
 * The paced valid load, in a thread of its own so the attacks' work in the main thread never delays its
 * sends or its clock: `POST /event` and `POST /events` at fixed rates on keep-alive connections, each request
 * sent when due whatever the answers to earlier ones (a slow API gets more requests in flight, not fewer).
 * Each second it posts a pulse (how one second's requests went); on "stop" it sends no more, waits for the
 * answers, and posts every request's record.
 */
const settings = workerData as LoadSettings;
// A pool of keep-alive connections per source address: the publisher's audience is many clients, not one.
const agents = settings.sources.map((localAddress) => ({ localAddress, agent: new Agent({ keepAlive: true }) }));
let turn = 0;
const url = new URL(settings.apiUrl);
const records: LoadRecord[] = [];
const inFlight = new Set<Promise<void>>();
const startedAt = Date.now();
let events = 0;
let batches = 0;

function post(path: string, body: string, contentType: string): Promise<{ outcome: Outcome; ms: number }> {
  const began = performance.now();
  const { agent, localAddress } = agents[turn++ % agents.length] as (typeof agents)[number];
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ outcome, ms: performance.now() - began });
    };
    const req = request({
      host: url.hostname,
      port: url.port,
      path,
      method: "POST",
      agent,
      localAddress,
      headers: {
        "content-type": contentType,
        "content-length": Buffer.byteLength(body),
        authorization: `Bearer ${settings.ingestKey}`,
      },
    });
    const timer = setTimeout(() => {
      done(TIMEOUT);
      req.destroy();
    }, settings.timeoutMs);
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => done(answer(res.statusCode ?? 0, text)));
      res.on("error", () => done(CUT));
    });
    req.on("error", () => done(CUT));
    req.end(body);
  });
}

/** A 202 that did not take every event is not a plain 2xx: its ids are unsure. */
function answer(status: number, body: string): Outcome {
  const outcome = describeAnswer(status, body);
  if (status !== 202) return outcome;
  const rejected = (JSON.parse(body) as { rejected?: unknown[] }).rejected ?? [];
  return rejected.length === 0 ? outcome : "valid events rejected (202)";
}

/** Per second of sending (epoch s): requests sent, and those answered 2xx within PROMPT_MS. */
const seconds = new Map<number, { sent: number; prompt: number }>();

function track(route: LoadRecord["route"], seq: number, sent: Promise<{ outcome: Outcome; ms: number }>): void {
  const at = Date.now();
  const second = Math.floor(at / 1000);
  const tally = seconds.get(second) ?? { sent: 0, prompt: 0 };
  seconds.set(second, tally);
  tally.sent++;
  const recorded = sent.then(({ outcome, ms }) => {
    records.push({ at, route, seq, outcome, ms });
    if (is2xx(outcome) && ms < PROMPT_MS) tally.prompt++;
    inFlight.delete(recorded);
  });
  inFlight.add(recorded);
}

/** Each second, the second before last (its requests have all had PROMPT_MS): how many went well. */
function pulse(): void {
  const second = Math.floor(Date.now() / 1000) - 2;
  const tally = seconds.get(second) ?? { sent: 0, prompt: 0 };
  seconds.delete(second);
  const message: Pulse = { kind: "pulse", second, ...tally };
  parentPort?.postMessage(message);
}

function tick(): void {
  const elapsed = Date.now() - startedAt;
  for (const due = Math.floor((elapsed * settings.eventsPerSecond) / 1000); events < due; events++) {
    track("event", events, post("/event", eventJson(settings.runId, `e${events}`, events), "application/json"));
  }
  for (const due = Math.floor((elapsed * settings.batchesPerSecond) / 1000); batches < due; batches++) {
    const lines = Array.from({ length: settings.batchSize }, (_, i) =>
      eventJson(settings.runId, `b${batches}-${i}`, batches * settings.batchSize + i),
    );
    track("events", batches, post("/events", lines.join("\n"), "application/x-ndjson"));
  }
}

const pacer = setInterval(tick, 2);
const pulses = setInterval(pulse, 1000);
parentPort?.on("message", async (message: unknown) => {
  if (message !== "stop") return;
  clearInterval(pacer);
  clearInterval(pulses);
  while (inFlight.size > 0) await Promise.all(inFlight);
  for (const { agent } of agents) agent.destroy();
  parentPort?.postMessage({ kind: "records", records });
});
