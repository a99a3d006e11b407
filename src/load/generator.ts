import type { Impression } from "../impression/fields.ts";
import { type Rng, randomInt, uuid, zipf } from "./random.ts";

/** What the generator meant an event to be: the stats compare it with the API's answer. */
export type EventKind = "new" | "late" | "duplicate" | "invalid";

export interface GeneratedEvent {
  kind: EventKind;
  /** The fields as sent; an invalid one may miss a field, carry an extra one or a wrong value. */
  fields: Record<string, unknown>;
}

export interface GeneratorOptions {
  ads: number;
  users: number;
  /** Shares of all events, 0-1: duplicates + invalid ≤ 1; late is a share of the new ones. */
  duplicates: number;
  late: number;
  invalid: number;
  rng: Rng;
  now: () => number;
}

/** How far back a late event is: 2 to 30 minutes, well inside any retention. */
export const LATE_MIN_MS = 2 * 60_000;
export const LATE_MAX_MS = 30 * 60_000;
/** Recent events a duplicate is drawn from: the last few (a quick retry) or any of these (a late resend). */
const HISTORY = 10_000;
const RECENT = 10;

/**
 * Each breaks one rule of docs/API.md, and each can be sent as JSON and as a pixel's query string, so every
 * route answers it with 400 and never stores it.
 */
const BREAKAGES: ((e: Impression) => Record<string, unknown>)[] = [
  (e) => ({ ...e, id: `bad id ${e.id}` }),
  ({ adId: _, ...rest }) => rest,
  (e) => ({ ...e, userId: "" }),
  (e) => ({ ...e, ts: Math.floor(e.ts / 1000) }),
  (e) => ({ ...e, ts: e.ts + 3_600_000 }),
  (e) => ({ ...e, campaign: "summer" }),
];

/**
 * Realistic random impressions: UUID ids, Zipf-popular ads (`ad-1` the most popular), uniformly drawn users,
 * ts = now (or minutes ago for a late one). A duplicate resends an earlier valid event unchanged: half of
 * them one of the last few (a retry), the others any of the last 10,000 (a fallback or a replay).
 */
export function createGenerator(o: GeneratorOptions): () => GeneratedEvent {
  const ad = zipf(o.ads, 1);
  const history: Impression[] = [];
  let next = 0;
  const fresh = (): Impression => {
    const late = o.late > 0 && o.rng() < o.late;
    const ts = late ? o.now() - LATE_MIN_MS - randomInt(o.rng, LATE_MAX_MS - LATE_MIN_MS) : o.now();
    return {
      id: uuid(o.rng),
      ts,
      userId: `user-${randomInt(o.rng, o.users) + 1}`,
      adId: `ad-${ad(o.rng) + 1}`,
    };
  };
  const remember = (e: Impression) => {
    if (history.length < HISTORY) history.push(e);
    else history[next] = e;
    next = (next + 1) % HISTORY;
  };
  return () => {
    const roll = o.rng();
    if (roll < o.invalid) {
      const breakage = BREAKAGES[randomInt(o.rng, BREAKAGES.length)] ?? BREAKAGES[0];
      return { kind: "invalid", fields: breakage?.(fresh()) ?? {} };
    }
    if (roll < o.invalid + o.duplicates && history.length > 0) {
      const soon = o.rng() < 0.5;
      const back = soon ? randomInt(o.rng, Math.min(RECENT, history.length)) : randomInt(o.rng, history.length);
      const index = (next - 1 - back + 2 * HISTORY) % HISTORY;
      const earlier = history[history.length < HISTORY ? index % history.length : index];
      if (earlier) return { kind: "duplicate", fields: { ...earlier } };
    }
    const event = fresh();
    remember(event);
    return { kind: event.ts < o.now() - 60_000 ? "late" : "new", fields: event };
  };
}
