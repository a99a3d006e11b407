import type { EventKind } from "./generator.ts";
import { Histogram } from "./histogram.ts";
import type { Outcome } from "./outcome.ts";
import { type RateShortfall, rateShortfall } from "./shortfall.ts";

type Category = Outcome["category"];

/** A count of 0 for every answer category. */
function zeroByCategory(): Record<Category, number> {
  return { ok: 0, rejected: 0, throttled: 0, unavailable: 0, serverError: 0, clientError: 0, network: 0 };
}

/** The run as counted so far: the live line reads it every second, the summary at the end. */
export class LoadStats {
  readonly latency = new Histogram();
  /** Since the last `tick()`: the live line's p50/p99 and rate. */
  readonly recent = new Histogram();
  readonly kinds: Record<EventKind, number> = { new: 0, late: 0, duplicate: 0, invalid: 0 };
  readonly requests: Record<Category, number> = zeroByCategory();
  readonly events: Record<Category | "accepted", number> & { sent: number } = {
    sent: 0,
    accepted: 0,
    ...zeroByCategory(),
  };
  readonly byStatus: Record<string, number> = {};
  requestsSent = 0;
  unexpectedEvents = 0;
  requestsWithUnexpected = 0;
  /** The first few distinct error messages, for the summary. */
  readonly errorSamples: string[] = [];
  private recentEvents = 0;

  sending(kinds: EventKind[]): void {
    this.requestsSent++;
    this.events.sent += kinds.length;
    this.recentEvents += kinds.length;
    for (const k of kinds) this.kinds[k]++;
  }

  record(outcome: Outcome, events: number, ms: number): void {
    this.requests[outcome.category]++;
    if (outcome.status !== undefined) {
      const key = String(outcome.status);
      this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
      this.latency.record(ms);
      this.recent.record(ms);
    }
    if (outcome.category === "ok" || outcome.category === "rejected") {
      this.events.accepted += outcome.accepted;
      this.events.rejected += outcome.rejected;
    } else {
      this.events[outcome.category] += events;
    }
    if (outcome.unexpected > 0) {
      this.unexpectedEvents += outcome.unexpected;
      this.requestsWithUnexpected++;
    }
    if (outcome.error && this.errorSamples.length < 5 && !this.errorSamples.includes(outcome.error)) {
      this.errorSamples.push(outcome.error);
    }
  }

  /** Requests that count against the exit code: no answer, 5xx, other 4xx, or an answer against intent. */
  failedRequests(): number {
    const r = this.requests;
    return r.network + r.unavailable + r.serverError + r.clientError + this.requestsWithUnexpected;
  }

  /** Events sent since the last tick, and clears the recent latencies. */
  tick(): { events: number; p50: number; p99: number } {
    const out = { events: this.recentEvents, p50: this.recent.percentile(50), p99: this.recent.percentile(99) };
    this.recentEvents = 0;
    this.recent.reset();
    return out;
  }
}

export type StoppedBy = "duration" | "events" | "signal";

export interface Summary {
  url: string;
  route: string;
  batch: number;
  concurrency: number;
  /** Events per second asked for; null: as fast as the concurrency allows. */
  rate: number | null;
  stoppedBy: StoppedBy;
  elapsedSeconds: number;
  /** sent = accepted + rejected + throttled + unavailable + failed. */
  events: {
    sent: number;
    accepted: number;
    rejected: number;
    throttled: number;
    unavailable: number;
    failed: number;
    /** What was sent on purpose: resent ids, ts minutes ago, broken events. */
    duplicates: number;
    late: number;
    invalid: number;
    /** Answered against intent: a valid event rejected or a broken one accepted. */
    unexpected: number;
  };
  requests: {
    sent: number;
    byStatus: Record<string, number>;
    throttled: number;
    unavailable: number;
    serverErrors: number;
    clientErrors: number;
    networkErrors: number;
    /** network errors + 5xx + unexpected 4xx + answers against intent. */
    failed: number;
    failureRate: number;
  };
  throughput: { eventsPerSecond: number; acceptedPerSecond: number; requestsPerSecond: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  maxFailureRate: number;
  ok: boolean;
  /** --rate not reached (below 90% of it, in a run of 1 s or more): why, and what to change; else null. */
  rateShortfall: RateShortfall | null;
  errors: string[];
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function summarize(
  stats: LoadStats,
  run: { url: string; route: string; batch: number; concurrency: number; rate: number | undefined },
  elapsedMs: number,
  stoppedBy: StoppedBy,
  maxFailureRate: number,
): Summary {
  const seconds = Math.max(elapsedMs / 1000, 1e-9);
  const failed = stats.failedRequests();
  const failureRate = stats.requestsSent === 0 ? 0 : failed / stats.requestsSent;
  const e = stats.events;
  const r = stats.requests;
  const h = stats.latency;
  const throughput = {
    eventsPerSecond: round(e.sent / seconds, 1),
    acceptedPerSecond: round(e.accepted / seconds, 1),
    requestsPerSecond: round(stats.requestsSent / seconds, 1),
  };
  const latencyMs = {
    p50: round(h.percentile(50)),
    p90: round(h.percentile(90)),
    p99: round(h.percentile(99)),
    max: round(h.max),
    mean: round(h.mean()),
  };
  return {
    url: run.url,
    route: run.route,
    batch: run.batch,
    concurrency: run.concurrency,
    rate: run.rate ?? null,
    stoppedBy,
    elapsedSeconds: round(elapsedMs / 1000, 3),
    events: {
      sent: e.sent,
      accepted: e.accepted,
      rejected: e.rejected,
      throttled: e.throttled,
      unavailable: e.unavailable,
      failed: e.serverError + e.clientError + e.network,
      duplicates: stats.kinds.duplicate,
      late: stats.kinds.late,
      invalid: stats.kinds.invalid,
      unexpected: stats.unexpectedEvents,
    },
    requests: {
      sent: stats.requestsSent,
      byStatus: { ...stats.byStatus },
      throttled: r.throttled,
      unavailable: r.unavailable,
      serverErrors: r.serverError + r.unavailable,
      clientErrors: r.clientError,
      networkErrors: r.network,
      failed,
      failureRate: round(failureRate, 4),
    },
    throughput,
    latencyMs,
    maxFailureRate,
    ok: failureRate <= maxFailureRate,
    rateShortfall:
      rateShortfall({
        rate: run.rate,
        eventsPerSecond: throughput.eventsPerSecond,
        elapsedSeconds: elapsedMs / 1000,
        concurrency: run.concurrency,
        batch: run.batch,
        route: run.route,
        meanLatencyMs: latencyMs.mean,
        p50LatencyMs: latencyMs.p50,
        throttled: r.throttled,
        unavailable: r.unavailable,
        networkErrors: r.network,
      }) ?? null,
    errors: [...stats.errorSamples],
  };
}

const n = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

/** One line for the terminal: totals, then the last second's rate and latencies. */
export function liveLine(stats: LoadStats, elapsedMs: number, last: { events: number; p50: number; p99: number }) {
  const e = stats.events;
  return (
    `${(elapsedMs / 1000).toFixed(0)}s  sent ${n(e.sent)}  accepted ${n(e.accepted)}  rejected ${n(e.rejected)}` +
    `  429 ${n(stats.requests.throttled)}  503 ${n(stats.requests.unavailable)}` +
    `  errors ${n(stats.failedRequests() - stats.requests.unavailable)}  |  ${n(last.events)} ev/s` +
    `  p50 ${ms(last.p50)}  p99 ${ms(last.p99)}`
  );
}

/** The summary for a person. */
export function formatSummary(s: Summary): string {
  const status = Object.entries(s.requests.byStatus)
    .map(([code, count]) => `${code}: ${n(count)}`)
    .join(", ");
  const lines = [
    `${s.route === "pixel" ? "GET /pixel.gif" : `POST /${s.route}`} at ${s.url}: ${s.elapsedSeconds.toFixed(1)} s, ` +
      `stopped by ${s.stoppedBy}, concurrency ${s.concurrency}${s.route === "events" ? `, batch ${s.batch}` : ""}, ` +
      `rate ${s.rate === null ? "unlimited" : `${n(s.rate)} events/s`}`,
    `events:   sent ${n(s.events.sent)} = accepted ${n(s.events.accepted)} + rejected ${n(s.events.rejected)} + ` +
      `429 ${n(s.events.throttled)} + 503 ${n(s.events.unavailable)} + failed ${n(s.events.failed)}`,
    `          of them duplicates ${n(s.events.duplicates)}, late ${n(s.events.late)}, invalid ${n(s.events.invalid)}` +
      `; answered against intent ${n(s.events.unexpected)}`,
    `requests: ${n(s.requests.sent)} (${status || "no answers"}); network errors ${n(s.requests.networkErrors)}, ` +
      `failed ${n(s.requests.failed)} (${(s.requests.failureRate * 100).toFixed(2)}%, limit ${s.maxFailureRate * 100}%)`,
    `rate:     ${n(s.throughput.eventsPerSecond)} events/s sent, ${n(s.throughput.acceptedPerSecond)} accepted, ` +
      `${n(s.throughput.requestsPerSecond)} requests/s`,
    ...(s.rateShortfall ? shortfallLines(s.rateShortfall).map((line) => `          ${line}`) : []),
    `latency:  p50 ${ms(s.latencyMs.p50)}, p90 ${ms(s.latencyMs.p90)}, p99 ${ms(s.latencyMs.p99)}, max ${ms(s.latencyMs.max)}`,
  ];
  if (s.errors.length > 0) lines.push(`errors:   ${s.errors.join(" | ")}`);
  lines.push(
    !s.ok
      ? `result:   FAILED: more than ${s.maxFailureRate * 100}% of the requests failed`
      : s.rateShortfall
        ? `result:   ok, but NOT at the rate asked for (${n(s.rateShortfall.asked)} events/s): see "rate" above`
        : "result:   ok",
  );
  return lines.join("\n");
}

/** The rate asked for and not reached, why, and what to change: two lines. */
export function shortfallLines(shortfall: RateShortfall): [string, string] {
  const share = Math.floor((shortfall.reached / shortfall.asked) * 100);
  return [
    `NOT the ${n(shortfall.asked)} events/s asked for (${share}%): ${shortfall.why}`,
    `to reach it: ${shortfall.change}`,
  ];
}
