/** Bucket bounds grow by 1% each: a percentile is within 1% of the exact value, at a fixed, small size. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** The smallest bucket's upper bound, in ms (1 µs); anything below lands in it. */
const MIN_MS = 0.001;
/** 1 µs * 1.01^2100 ≈ 1.2 million ms: 20 minutes and more. */
const BUCKETS = 2100;

/** A latency histogram in ms: O(1) record, constant memory however long the run. */
export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  max = 0;
  min = Number.POSITIVE_INFINITY;
  sum = 0;

  record(ms: number): void {
    const value = Math.max(ms, 0);
    const index = value <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(value / MIN_MS) / LOG_GROWTH));
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.count++;
    this.sum += value;
    if (value > this.max) this.max = value;
    if (value < this.min) this.min = value;
  }

  /** The value at or below which `p` percent of the recorded values lie (0 when empty). */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, MIN_MS * GROWTH ** i));
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.sum = 0;
  }
}
