import { Worker } from "node:worker_threads";
import { percentile } from "../../bench/percentile.ts";
import type { Disruption } from "./attack.ts";
import { CUT, count, is2xx, type Outcome, type Tally, TIMEOUT } from "./outcomes.ts";

/** The publisher's traffic every phase runs: paced `POST /event` and `POST /events` with an ingest key. */
export interface LoadSettings {
  apiUrl: string;
  ingestKey: string;
  /** `POST /event` requests per second. */
  eventsPerSecond: number;
  /** `POST /events` requests per second (NDJSON). */
  batchesPerSecond: number;
  batchSize: number;
  /** A request with no answer after this long counts as a timeout. */
  timeoutMs: number;
  /** Prefix of every id, so the ids of one run are its own. */
  runId: string;
  /** Local addresses the requests come from, in turn (loopback ones: 127.0.1.1, ...). */
  sources: string[];
}

/** The publisher's audience: eight client addresses (the whole of 127.0.0.0/8 reaches the loopback interface). */
export const AUDIENCE = Array.from({ length: 8 }, (_, i) => `127.0.1.${i + 1}`);

/** One valid request: when it was sent (epoch ms), what it was, how it ended and how long that took. */
export interface LoadRecord {
  at: number;
  route: "event" | "events";
  seq: number;
  outcome: Outcome;
  ms: number;
}

/** The ads the load spreads its events over (`ad-0` … `ad-19`): the query flood asks for all of them. */
export const LOAD_ADS = Array.from({ length: 20 }, (_, i) => `ad-${i}`);

/** One valid impression, sent now. */
export function eventJson(runId: string, suffix: string, n: number): string {
  return `{"id":"${runId}-${suffix}","ts":${Date.now()},"userId":"u-${n % 1000}","adId":"${LOAD_ADS[n % LOAD_ADS.length]}"}`;
}

/** The ids a request carried (as eventJson named them). */
export function idsOf(record: LoadRecord, settings: Pick<LoadSettings, "runId" | "batchSize">): string[] {
  if (record.route === "event") return [`${settings.runId}-e${record.seq}`];
  return Array.from({ length: settings.batchSize }, (_, i) => `${settings.runId}-b${record.seq}-${i}`);
}

/** A request answered 2xx within this is prompt: a second of requests all prompt is a steady second. */
export const PROMPT_MS = 1000;

/** How the requests sent in one second (epoch s) went: how many, and how many were answered 2xx promptly. */
export interface Pulse {
  kind: "pulse";
  second: number;
  sent: number;
  prompt: number;
}

export interface ValidLoad {
  /** The pulses of the seconds since the load began, oldest first. */
  pulses(): readonly Pulse[];
  /** Stops sending, waits for every answer and resolves with every request's record. */
  stop(): Promise<LoadRecord[]>;
}

export function startValidLoad(settings: LoadSettings): ValidLoad {
  const worker = new Worker(new URL("./valid-load-worker.ts", import.meta.url), { workerData: settings });
  const pulses: Pulse[] = [];
  const records = new Promise<LoadRecord[]>((resolve, reject) => {
    worker.on("message", (message: Pulse | { kind: "records"; records: LoadRecord[] }) => {
      if (message.kind === "pulse") pulses.push(message);
      else resolve(message.records);
    });
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the valid load's thread exited (${code}) before its report`)));
  });
  return {
    pulses: () => pulses,
    async stop() {
      worker.postMessage("stop");
      const all = await records;
      await worker.terminate();
      return all;
    },
  };
}

/** Whether the last `count` pulses are steady: requests sent, every one answered 2xx within PROMPT_MS. */
export function steady(pulses: readonly Pulse[], count: number): boolean {
  const last = pulses.slice(-count);
  return last.length === count && last.every((p) => p.sent > 0 && p.prompt === p.sent);
}

/** What the valid requests sent within a window saw. */
export interface WindowStats {
  requests: number;
  ok: number;
  /** ok / requests, 0-1. */
  okShare: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Outcomes other than 2xx. */
  failures: Tally;
}

/** The requests sent in [from, to) (epoch ms). Latency percentiles over every request, answered or not. */
export function summarize(records: readonly LoadRecord[], from: number, to: number): WindowStats {
  const inWindow = records.filter((r) => r.at >= from && r.at < to);
  const latencies = inWindow.map((r) => r.ms).sort((a, b) => a - b);
  const failures: Tally = {};
  let ok = 0;
  for (const record of inWindow) {
    if (is2xx(record.outcome)) ok++;
    else count(failures, record.outcome);
  }
  return {
    requests: inWindow.length,
    ok,
    okShare: inWindow.length === 0 ? 0 : ok / inWindow.length,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    failures,
  };
}

/** Cut or timed out, and in flight during the disruption (sent before its end, answered after its start). */
export function disruptedBy(record: LoadRecord, disruption: Disruption): boolean {
  return (
    (record.outcome === CUT || record.outcome === TIMEOUT) &&
    record.at <= disruption.to &&
    record.at + record.ms >= disruption.from
  );
}
