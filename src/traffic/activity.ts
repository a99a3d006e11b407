/** One key's count in one window. */
interface Window {
  /** The window's index: its start in ms divided by windowMs. */
  index: number;
  count: number;
}

export interface ActivityLimit {
  /** More impressions than this in one window are invalid. */
  max: number;
  windowMs: number;
  /** Windows kept at most; past it the ones counted first are forgotten first. */
  maxKeys: number;
}

/**
 * The activity rule's counters for one kind of key (one ad to one user, or one ad from one client IP), in windows
 * of event time aligned to the epoch (with 60 s: 10:00:00.000-10:00:59.999, then the next): the impressions past
 * `max` in a window are over the limit. Aligned windows count events that arrive out of order (a server's backlog)
 * in the window they belong to. A burst split across two windows can carry up to 2 × max within windowMs unflagged;
 * in exchange a key costs one small object, whatever max is.
 *
 * Windows more than one window older than the newest one seen are dropped from the front of the Map (the order they
 * were first counted in) as new ones come, and past maxKeys the ones counted first.
 */
export class ActivityWindows {
  readonly #limit: ActivityLimit;
  readonly #windows = new Map<string, Window>();
  #newest = Number.NEGATIVE_INFINITY;

  constructor(limit: ActivityLimit) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#windows.size;
  }

  /** Counts an impression of `key` at `at` (ms, event time); true when it is past the limit of its window. */
  count(key: string, at: number): boolean {
    const index = Math.floor(at / this.#limit.windowMs);
    const id = `${index}\n${key}`;
    let window = this.#windows.get(id);
    if (window === undefined) {
      if (index > this.#newest) this.#newest = index;
      this.#forgetOld();
      window = { index, count: 0 };
      this.#windows.set(id, window);
    }
    window.count++;
    return window.count > this.#limit.max;
  }

  #forgetOld(): void {
    for (const [id, window] of this.#windows) {
      const expired = window.index < this.#newest - 1;
      if (!expired && this.#windows.size < this.#limit.maxKeys) return;
      this.#windows.delete(id);
    }
  }
}
