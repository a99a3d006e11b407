import type { Route } from "./args.ts";
import type { GeneratedEvent } from "./generator.ts";

/** How one request ended, in events and in the one category the request falls in. */
export interface Outcome {
  /** The HTTP status; undefined for a network error or a timeout. */
  status: number | undefined;
  /**
   * ok: 2xx; rejected: 400 (validation); throttled: 429; unavailable: 503; serverError: any other 5xx;
   * clientError: any other 4xx (the key, the route or the generator is wrong); network: no answer.
   */
  category: "ok" | "rejected" | "throttled" | "unavailable" | "serverError" | "clientError" | "network";
  accepted: number;
  rejected: number;
  /** Events answered against their intent: a valid one rejected, or a broken one accepted. */
  unexpected: number;
  /** How long this sender waits before its next request (429 and 503), in ms. */
  retryAfterMs: number | undefined;
  error?: string;
}

/** Retry-After as seconds or an HTTP date; 1 s when it is missing or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header !== null && /^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
  const at = header === null ? Number.NaN : Date.parse(header);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

const wrongAnswers = (events: GeneratedEvent[], rejectedIndexes: Set<number>) =>
  events.reduce((n, e, i) => n + ((e.kind === "invalid") !== rejectedIndexes.has(i) ? 1 : 0), 0);
const allIndexes = (events: GeneratedEvent[]) => new Set(events.map((_, i) => i));

/** Reads a `POST /events` 202 body: `{accepted, rejected: [{index}]}`; undefined if it is not that shape. */
function batchAnswer(body: string): { accepted: number; rejected: Set<number> } | undefined {
  try {
    const parsed = JSON.parse(body) as { accepted?: unknown; rejected?: unknown };
    if (typeof parsed.accepted !== "number" || !Array.isArray(parsed.rejected)) return undefined;
    return {
      accepted: parsed.accepted,
      rejected: new Set(parsed.rejected.map((r: { index?: unknown }) => Number(r?.index))),
    };
  } catch {
    return undefined;
  }
}

/** What the API's answer means for the events of one request (docs/API.md). */
export function interpret(
  route: Route,
  events: GeneratedEvent[],
  status: number,
  body: string,
  retryAfter: string | null,
): Outcome {
  const n = events.length;
  const none = { accepted: 0, rejected: 0, unexpected: 0, retryAfterMs: undefined, status };
  if (status >= 200 && status < 300) {
    if (route === "events") {
      const answer = batchAnswer(body);
      if (!answer) return { ...none, category: "serverError", error: `unreadable 2xx body: ${body.slice(0, 200)}` };
      return {
        ...none,
        category: "ok",
        accepted: answer.accepted,
        rejected: answer.rejected.size,
        unexpected: wrongAnswers(events, answer.rejected),
      };
    }
    return { ...none, category: "ok", accepted: n, unexpected: wrongAnswers(events, new Set()) };
  }
  if (status === 400) {
    return { ...none, category: "rejected", rejected: n, unexpected: wrongAnswers(events, allIndexes(events)) };
  }
  if (status === 429) return { ...none, category: "throttled", retryAfterMs: retryAfterMs(retryAfter) };
  if (status === 503) return { ...none, category: "unavailable", retryAfterMs: retryAfterMs(retryAfter) };
  const error = `${status} ${body.slice(0, 200)}`;
  return { ...none, category: status >= 500 ? "serverError" : "clientError", error };
}

export interface PreparedRequest {
  url: string;
  init: { method: "GET" | "POST"; headers: Record<string, string>; body?: string };
}

/** The HTTP request that sends `events` on `route`: a key as Bearer, or as ?key= for the pixel. */
export function prepareRequest(
  base: string,
  route: Route,
  events: GeneratedEvent[],
  key: string | undefined,
): PreparedRequest {
  if (route === "pixel") {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(events[0]?.fields ?? {})) query.set(name, String(value));
    if (key !== undefined) query.set("key", key);
    return { url: `${base}/pixel.gif?${query}`, init: { method: "GET", headers: {} } };
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  const body =
    route === "event" ? JSON.stringify(events[0]?.fields ?? {}) : JSON.stringify(events.map((e) => e.fields));
  return { url: `${base}/${route}`, init: { method: "POST", headers, body } };
}
