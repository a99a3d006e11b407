/** Below this share of `--rate`, the summary says the rate was not reached. */
export const REACHED_SHARE = 0.9;
/** A run shorter than this is too short to judge: its last answers' latency weighs on the average. */
const MIN_SECONDS = 1;
const MAX_CONCURRENCY = 10_000;

/** What a run did, as far as its rate goes. */
export interface RateRun {
  /** --rate; undefined: no limit asked for. */
  rate: number | undefined;
  eventsPerSecond: number;
  elapsedSeconds: number;
  concurrency: number;
  /** Events per request. */
  batch: number;
  route: string;
  meanLatencyMs: number;
  p50LatencyMs: number;
  /** Requests answered 429 and 503 (each followed by a wait of Retry-After), and those with no answer. */
  throttled: number;
  unavailable: number;
  networkErrors: number;
}

/** The rate asked for and not reached: how far off, why, and what to change. */
export interface RateShortfall {
  asked: number;
  reached: number;
  why: string;
  change: string;
}

const n = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

/**
 * Why `--rate` was not reached, and what to change; undefined if it was (at least REACHED_SHARE of it), if no
 * rate was asked for, or if the run was too short to tell. The senders wait for each answer, so at most
 * concurrency × batch ÷ mean latency events a second go out (Little's law). 429s and 503s (a sender waits their
 * Retry-After) and requests with no answer (a pause) come first as reasons; a ceiling above the rate means the
 * senders were not kept busy.
 */
export function rateShortfall(run: RateRun): RateShortfall | undefined {
  if (run.rate === undefined || run.elapsedSeconds < MIN_SECONDS) return undefined;
  if (run.eventsPerSecond >= run.rate * REACHED_SHARE) return undefined;
  const base = { asked: run.rate, reached: run.eventsPerSecond };
  if (run.throttled + run.unavailable > 0) {
    const answers = [];
    const changes = [];
    if (run.throttled > 0) {
      answers.push(`429 ${n(run.throttled)} times`);
      changes.push(
        "a 429 is a rate limit: the key's (npm run keys -- create … --rate N) or the IP's (INGEST_RATE_PER_IP)",
      );
    }
    if (run.unavailable > 0) {
      answers.push(`503 ${n(run.unavailable)} times`);
      changes.push("a 503 is the API shedding load (Kafka slow or away, its buffer full): see its log and GET /readyz");
    }
    return {
      ...base,
      why: `the API answered ${answers.join(" and ")}, and each time the sender waited its Retry-After`,
      change: changes.join("; "),
    };
  }
  if (run.networkErrors > 0) {
    return {
      ...base,
      why: `${n(run.networkErrors)} request${run.networkErrors === 1 ? "" : "s"} got no answer, each followed by a pause of its sender`,
      change: "check that the API runs at the --url given, and its log",
    };
  }
  const perRequestS = Math.max(run.meanLatencyMs, 0.001) / 1000;
  const ceiling = (run.concurrency * run.batch) / perRequestS;
  const perRequest = run.batch === 1 ? "1 event" : `${n(run.batch)} events`;
  const inFlight = `${n(run.concurrency)} request${run.concurrency === 1 ? "" : "s"} in flight × ${perRequest} each`;
  const allow = `${inFlight} ÷ ${ms(run.meanLatencyMs)} mean latency (p50 ${ms(run.p50LatencyMs)}) allow about ${n(ceiling)} events/s`;
  if (ceiling >= run.rate * REACHED_SHARE) {
    // The answers came fast enough: the senders were not kept busy.
    return {
      ...base,
      why: `${allow}, so the time went elsewhere: a slow start (new connections, a cold API) in a short run, or this process's CPU`,
      change: "a longer --duration, or several load generators side by side",
    };
  }
  const needed = Math.min(MAX_CONCURRENCY, Math.ceil((run.rate * perRequestS) / run.batch));
  const batching = run.route === "events" ? "a larger --batch" : "--route events --batch 100 (100 events a request)";
  return {
    ...base,
    why: allow,
    change:
      `--concurrency ${needed} or more (${n(run.rate)} events/s × ${ms(run.meanLatencyMs)} ÷ ${perRequest} a request), ` +
      `or ${batching}; if the latency grows with them, the API is the limit: more API processes (API_INSTANCES)`,
  };
}
