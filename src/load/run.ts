import { setTimeout as sleep } from "node:timers/promises";
import { type LoadOptions, MAX_FAILURE_RATE } from "./args.ts";
import type { GeneratedEvent } from "./generator.ts";
import { interpret, type Outcome, prepareRequest } from "./outcome.ts";
import { RateSchedule } from "./rate.ts";
import { LoadStats, type StoppedBy, type Summary, summarize } from "./stats.ts";

export interface RunDeps {
  next: () => GeneratedEvent;
  fetch?: typeof fetch;
  /** Aborting it stops the run: requests in flight finish, then the summary. */
  signal?: AbortSignal;
  /** Called about once a second while running (the live line). */
  onTick?: (stats: LoadStats, elapsedMs: number, last: ReturnType<LoadStats["tick"]>) => void;
  requestTimeoutMs?: number;
}

const NETWORK_BACKOFF_MS = 100;
const aborted = (signal: AbortSignal | undefined) => signal?.aborted === true;

/** Waits `ms`, or less if the signal aborts first; never throws. */
const pause = (ms: number, signal?: AbortSignal) =>
  ms <= 0 ? Promise.resolve() : sleep(ms, undefined, { signal }).catch(() => undefined);

async function send(
  options: LoadOptions,
  events: GeneratedEvent[],
  doFetch: typeof fetch,
  timeoutMs: number,
): Promise<Outcome> {
  const { url, init } = prepareRequest(options.url, options.route, events, options.key);
  try {
    const response = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return interpret(options.route, events, response.status, body, response.headers.get("retry-after"));
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const message = cause?.code ?? cause?.message ?? (error as Error).message;
    return {
      status: undefined,
      category: "network",
      accepted: 0,
      rejected: 0,
      unexpected: 0,
      retryAfterMs: undefined,
      error: `network: ${message}`,
    };
  }
}

/**
 * Sends impressions as `options` says, with `options.concurrency` senders in flight, paced by `--rate`,
 * until the duration, the event count or the signal; resolves with the summary.
 */
export async function runLoad(options: LoadOptions, deps: RunDeps): Promise<Summary> {
  const doFetch = deps.fetch ?? fetch;
  const timeoutMs = deps.requestTimeoutMs ?? 10_000;
  const stats = new LoadStats();
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const deadline = options.durationMs;
  const schedule = options.rate === undefined ? undefined : new RateSchedule(options.rate, () => performance.now());
  let remaining = options.events ?? Number.POSITIVE_INFINITY;
  // Stops the senders' waits at the deadline as well as on the caller's signal.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  deps.signal?.addEventListener("abort", onAbort, { once: true });
  const deadlineTimer = Number.isFinite(deadline) ? setTimeout(onAbort, deadline) : undefined;
  const ticker = deps.onTick ? setInterval(() => deps.onTick?.(stats, elapsed(), stats.tick()), 1000) : undefined;

  const sender = async () => {
    while (!stop.signal.aborted && remaining > 0) {
      const count = Math.min(options.batch, remaining);
      remaining -= count;
      if (schedule) await pause(schedule.reserve(count), stop.signal);
      if (stop.signal.aborted) return;
      const events = Array.from({ length: count }, deps.next);
      stats.sending(events.map((e) => e.kind));
      const began = performance.now();
      const outcome = await send(options, events, doFetch, timeoutMs);
      stats.record(outcome, count, performance.now() - began);
      if (outcome.retryAfterMs !== undefined) await pause(outcome.retryAfterMs, stop.signal);
      // No answer at all: a short pause, so that a sender does not spin on a refused connection.
      else if (outcome.category === "network") await pause(NETWORK_BACKOFF_MS, stop.signal);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, sender));
  } finally {
    clearTimeout(deadlineTimer);
    clearInterval(ticker);
    deps.signal?.removeEventListener("abort", onAbort);
  }
  const stoppedBy: StoppedBy = aborted(deps.signal) ? "signal" : remaining <= 0 ? "events" : "duration";
  return summarize(stats, options, elapsed(), stoppedBy, MAX_FAILURE_RATE);
}
