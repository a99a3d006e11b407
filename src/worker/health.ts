/**
 * The consumer measures its lag every 10 s; a reading older than three of those says nothing (the worker owns
 * no partition any more, or Kafka cannot be asked), and a stall cannot be told from no work.
 */
export const LAG_READING_STALE_MS = 30_000;

/** What the consumer's hooks told, on a monotonic clock in milliseconds. */
export interface ProgressReadings {
  /** When offsets were last committed; undefined before the first commit. */
  lastCommitAt: number | undefined;
  /** The last lag measurement; undefined before the first. */
  lag: LagReading | undefined;
}

export interface LagReading {
  /** Messages of this worker's partitions not committed yet. */
  total: number;
  measuredAt: number;
  /** The first of the unbroken run of readings above 0 that this one ends; undefined when this one is 0. */
  positiveSince: number | undefined;
}

/** The worker's GET /healthz body. */
export interface WorkerHealth {
  status: "ok" | "stalled";
  reason: string;
  /** Total lag of the last reading; null when there is no fresh one. */
  lag: number | null;
  lagMeasuredSecondsAgo: number | null;
  /** null before the first commit. */
  lastCommitSecondsAgo: number | null;
  stallSeconds: number;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/**
 * Stalled: lag above 0 and no commit for `stallMs`, counted from the later of the last commit and the first
 * reading that showed this lag. So a worker is never stalled before a measurement has shown it work to do,
 * whether it just started or was just given partitions (after a rebalance), and an idle worker, whose last
 * commit may be hours old, is healthy.
 */
export function judgeProgress(readings: ProgressReadings, now: number, stallMs: number): WorkerHealth {
  const { lag, lastCommitAt } = readings;
  const figures = {
    lag: null,
    lagMeasuredSecondsAgo: null,
    lastCommitSecondsAgo: lastCommitAt === undefined ? null : seconds(now - lastCommitAt),
    stallSeconds: seconds(stallMs),
  };
  if (lag === undefined || now - lag.measuredAt > LAG_READING_STALE_MS) {
    return {
      status: "ok",
      reason: "no lag measured in the last 30 s: just started, no partition owned, or Kafka away",
      ...figures,
    };
  }
  const measured = { ...figures, lag: lag.total, lagMeasuredSecondsAgo: seconds(now - lag.measuredAt) };
  if (lag.positiveSince === undefined) return { status: "ok", reason: "no lag", ...measured };
  const waited = now - Math.max(lag.positiveSince, lastCommitAt ?? Number.NEGATIVE_INFINITY);
  if (waited < stallMs) return { status: "ok", reason: `consuming: lag ${lag.total}`, ...measured };
  return {
    status: "stalled",
    reason: `lag ${lag.total} and no batch committed for ${seconds(waited)} s (WORKER_STALL_SECONDS=${seconds(stallMs)})`,
    ...measured,
  };
}

/** Keeps the readings from the consumer's onCommitted and onLag hooks, and judges them on demand. */
export class ConsumerProgress {
  readonly #readings: ProgressReadings = { lastCommitAt: undefined, lag: undefined };
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  committed(): void {
    this.#readings.lastCommitAt = this.#now();
  }

  measuredLag(total: bigint): void {
    const now = this.#now();
    const previous = this.#readings.lag;
    // A run of lag goes on only through fresh readings: after a gap, the worker gets a full stall time again.
    const ongoing = previous && now - previous.measuredAt <= LAG_READING_STALE_MS ? previous.positiveSince : undefined;
    this.#readings.lag = {
      total: Number(total),
      measuredAt: now,
      positiveSince: total > 0n ? (ongoing ?? now) : undefined,
    };
  }

  health(stallMs: number): WorkerHealth {
    return judgeProgress(this.#readings, this.#now(), stallMs);
  }
}
