/**
 * Paces all senders to `ratePerSecond` events: each request reserves its events' slots and learns how long
 * to wait (a virtual schedule, GCRA-style). A schedule that fell behind (all senders busy) may catch up by at
 * most `burstMs` worth of events, so the average never exceeds the rate.
 */
export class RateSchedule {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly burstMs: number;
  private nextAt: number;

  constructor(ratePerSecond: number, now: () => number, burstMs = 100) {
    this.intervalMs = 1000 / ratePerSecond;
    this.now = now;
    this.burstMs = burstMs;
    this.nextAt = now();
  }

  /** Reserves `events` slots; returns the ms to wait before sending them (0: now). */
  reserve(events = 1): number {
    const t = this.now();
    if (this.nextAt < t - this.burstMs) this.nextAt = t - this.burstMs;
    const at = this.nextAt;
    this.nextAt += events * this.intervalMs;
    return Math.max(0, at - t);
  }
}
