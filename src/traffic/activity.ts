export interface ActivityLimit {
  /** More impressions than this in one window are invalid. */
  max: number;
  windowMs: number;
  /** Keys counted per window at most: past it, a key not counted yet is not counted in that window. */
  maxKeys: number;
}

/** One window's counts, per first key (an ad), then per second key (a user, a client IP). */
interface Counts {
  byFirst: Map<string, Map<string, number>>;
  keys: number;
}

const counts = (): Counts => ({ byFirst: new Map(), keys: 0 });

/**
 * The activity rule's counters for one kind of key (one ad to one user, or one ad from one client IP), in windows
 * of event time aligned to the epoch (with 60 s: 10:00:00.000-10:00:59.999, then the next): the impressions past
 * `max` in a window are over the limit. Aligned windows count events that arrive out of order (a server's backlog)
 * in the window they belong to. A burst split across two windows can carry up to 2 × max within windowMs
 * unflagged; in exchange a key already counted costs two Map lookups and no allocation.
 *
 * The newest window and the one before are kept; a newer window drops the older ones at once, and the rare events
 * older than both (a backlog) are counted in a third set, dropped along. Each holds at most maxKeys keys.
 */
export class ActivityWindows {
  readonly #limit: ActivityLimit;
  /** The newest window's index: its start in ms / windowMs. */
  #index = Number.NEGATIVE_INFINITY;
  #current = counts();
  #previous = counts();
  /** Windows before those two, by `${index}\n${first}`. */
  #older = counts();

  constructor(limit: ActivityLimit) {
    this.#limit = limit;
  }

  /** Keys counted in the windows kept. */
  get size(): number {
    return this.#current.keys + this.#previous.keys + this.#older.keys;
  }

  /** Counts an impression of (`first`, `second`) at `at` (ms, event time); true when past its window's limit. */
  count(first: string, second: string, at: number): boolean {
    const index = Math.floor(at / this.#limit.windowMs);
    if (index > this.#index) this.#advance(index);
    if (index === this.#index) return this.#add(this.#current, first, second);
    if (index === this.#index - 1) return this.#add(this.#previous, first, second);
    return this.#add(this.#older, `${index}\n${first}`, second);
  }

  #advance(index: number): void {
    this.#previous = index === this.#index + 1 ? this.#current : counts();
    this.#current = counts();
    this.#older = counts();
    this.#index = index;
  }

  #add(window: Counts, first: string, second: string): boolean {
    let bySecond = window.byFirst.get(first);
    const count = bySecond?.get(second);
    if (count === undefined) {
      if (window.keys >= this.#limit.maxKeys) return false;
      window.keys++;
      if (bySecond === undefined) {
        bySecond = new Map();
        window.byFirst.set(first, bySecond);
      }
    }
    const next = (count ?? 0) + 1;
    (bySecond as Map<string, number>).set(second, next);
    return next > this.#limit.max;
  }
}
