import { setTimeout as sleep } from "node:timers/promises";
import type { ChaosEvent } from "./events.ts";

export interface SendOptions {
  /** The sends are spread evenly over this time (the chaos happens inside it). */
  sendSeconds: number;
  /** Events per POST /events. */
  batchSize: number;
  /** Requests in flight at once. */
  senders: number;
  /** Stops the senders (the run failed elsewhere). */
  signal?: AbortSignal;
  /** Called once, as soon as every distinct id of `events` has had a 2xx (the copies sent last may follow). */
  onEveryIdAccepted?: () => void;
}

/** What the senders saw, each figure from their side of the HTTP connection. */
export interface SendReport {
  /** Distinct ids some 2xx acknowledged. */
  accepted: Set<string>;
  /** Events in 2xx answers, copies included. */
  acceptedCount: number;
  /** 503 answers (each batch was sent again). */
  unavailable: number;
  /** Requests with no answer within SEND_TIMEOUT_MS (sent again). */
  timeouts: number;
  /** Requests that found no API to talk to: refused or reset connections (sent again). */
  connectionErrors: number;
  retriedSends: number;
  /** The longest time some sender kept trying while no sender got a 2xx, and when (epoch ms) it began. */
  longestWithout2xxMs: number;
  longestWithout2xxFrom: number;
  startedAt: number;
  /** When the last 2xx came: the end of the sending. */
  lastAcceptedAt: number;
}

const SEND_TIMEOUT_MS = 10_000;
/** A batch that gets no 2xx for this long fails the run instead of hanging it. */
const GIVE_UP_AFTER_MS = 300_000;

/**
 * Sends `events` in order through `POST /events`, paced over `sendSeconds`; a batch answered 503, timed out or
 * refused is sent again, unchanged (the same ids, so it counts once), until a 2xx. Any other answer, or a valid
 * event rejected, stops the run.
 */
export async function sendEvents(apiUrl: string, events: ChaosEvent[], options: SendOptions): Promise<SendReport> {
  const startedAt = Date.now();
  const report: SendReport = {
    accepted: new Set(),
    acceptedCount: 0,
    unavailable: 0,
    timeouts: 0,
    connectionErrors: 0,
    retriedSends: 0,
    longestWithout2xxMs: 0,
    longestWithout2xxFrom: startedAt,
    startedAt,
    lastAcceptedAt: startedAt,
  };
  const distinctIds = new Set(events.map((event) => event.id)).size;
  const batches = Math.ceil(events.length / options.batchSize);
  let next = 0;
  const sender = async () => {
    for (let b = next++; b < batches; b = next++) {
      options.signal?.throwIfAborted();
      const due = startedAt + (b / batches) * options.sendSeconds * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      const batch = events.slice(b * options.batchSize, (b + 1) * options.batchSize);
      const firstTry = Date.now();
      for (let attempt = 0; ; attempt++) {
        const outcome = await send(apiUrl, batch);
        if (outcome === "accepted") {
          const before = report.accepted.size;
          accept(report, batch, firstTry);
          if (before < distinctIds && report.accepted.size === distinctIds) options.onEveryIdAccepted?.();
          break;
        }
        report[outcome]++;
        report.retriedSends++;
        options.signal?.throwIfAborted();
        if (Date.now() - firstTry > GIVE_UP_AFTER_MS) {
          throw new Error(`no 2xx for a batch within ${GIVE_UP_AFTER_MS / 1000}s (last: ${outcome})`);
        }
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: options.senders }, sender));
  return report;
}

function accept(report: SendReport, batch: ChaosEvent[], firstTry: number): void {
  const now = Date.now();
  // Idle time between paced sends is not a stretch without 2xx: it starts when this batch was first tried.
  const from = Math.max(report.lastAcceptedAt, firstTry);
  if (now - from > report.longestWithout2xxMs) {
    report.longestWithout2xxMs = now - from;
    report.longestWithout2xxFrom = from;
  }
  report.lastAcceptedAt = now;
  for (const event of batch) report.accepted.add(event.id);
  report.acceptedCount += batch.length;
}

type SendOutcome = "accepted" | "unavailable" | "timeouts" | "connectionErrors";

/** One POST /events; 503, timeouts and connection errors are worth a retry, anything else stops the run. */
async function send(apiUrl: string, batch: ChaosEvent[]): Promise<SendOutcome> {
  // The first send of an event fixes its ts: a copy is the same event sent again.
  const now = Date.now();
  for (const event of batch) if (event.ts === 0) event.ts = now;
  try {
    const response = await fetch(`${apiUrl}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    const body = (await response.json()) as { rejected?: { index: number }[] };
    if (response.status === 202) {
      if ((body.rejected ?? []).length > 0) {
        throw new Error(`the API rejected valid events: ${JSON.stringify(body.rejected)}`);
      }
      return "accepted";
    }
    if (response.status === 503) return "unavailable";
    throw new Error(`the API answered ${response.status}: ${JSON.stringify(body)}`);
  } catch (error) {
    if ((error as Error).name === "TimeoutError") return "timeouts";
    if (error instanceof TypeError) return "connectionErrors";
    throw error;
  }
}
