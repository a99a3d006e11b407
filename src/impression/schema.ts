import { z } from "zod";
import { isIpAddress } from "../ip-address.ts";
import {
  EVENT_KINDS,
  IMPRESSION_FIELDS,
  type Impression,
  SENDER_FIELDS,
  type Stamp,
  type ViewerEvidence,
} from "./fields.ts";

export type { EventKind, Impression } from "./fields.ts";

/**
 * An impression as a sender may send it over HTTP: `ts` may be left out, and the API then takes the time it
 * received the event (a browser's clock can be minutes off); on the wire it is always there. What the sender says
 * of the viewer (ViewerEvidence) decides the fields the API sets (Stamp), and is not written itself.
 */
export type SentImpression = Omit<Impression, "ts" | keyof Stamp> & { ts?: number } & ViewerEvidence;

/**
 * Ids are 1-128 characters of A-Z a-z 0-9 . _ : - : this covers UUIDs, ULIDs and most vendor ids,
 * needs no escaping in JSON, URLs or logs, and any such string is a valid ClickHouse String.
 */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * On the wire, a traffic label is any such word, not only the labels this version knows: a newer API's reason must
 * not make an older worker dead-letter an acknowledged event.
 */
export const TRAFFIC_LABEL_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;
/** A network as the API writes it: an IPv4 or IPv6 address with a prefix length (src/ip-address.ts). */
export const IP_PREFIX_PATTERN = /^[0-9a-f.:]{2,39}\/\d{1,3}$/;
/** The longest `userAgent` a sender may report: real ones stay well under 512 characters. */
export const USER_AGENT_MAX_LENGTH = 1024;
const DAY_MS = 86_400_000;

export interface ImpressionLimits {
  /** How far ahead of now a ts may be (senders' clock skew). */
  maxFutureSkewMs: number;
  /** Older events would be dropped by ClickHouse TTL at once, so they are rejected up front. */
  retentionDays: number;
  now?: () => number;
}

/** What each field means, for the API's document (GET /openapi.json). */
const FIELD_DESCRIPTIONS: Record<keyof Impression | keyof ViewerEvidence, string> = {
  id: "the impression's own id: copies with the same id (retries, fallbacks) are counted once",
  ts:
    "event time in epoch milliseconds, within the retention and at most MAX_FUTURE_SKEW_MS ahead; optional: " +
    "without it the event time is when the API received it",
  userId:
    "who saw the ad; optional: leave it out when the viewer may not be identified (no consent). Reach and " +
    "frequency count identified viewers only",
  adId: "the ad that was shown",
  kind:
    `what happened to the impression: ${EVENT_KINDS.join(", ")}; optional, impression by default. Each kind is ` +
    "counted once per impression id",
  traffic: "set by the API: valid, unclassified or the reason the event is invalid traffic",
  ipPrefix: "set by the API: the viewer's network (IPv4 /24, IPv6 /48), never its address",
  userAgent:
    "a server reporting for the viewer: the viewer's User-Agent, for classifying the traffic (docs/STATS.md); " +
    "ignored on a request a page sends, whose own headers describe the viewer; not stored",
  ip:
    "a server reporting for the viewer: the viewer's IPv4 or IPv6 address, for classifying the traffic; ignored " +
    "on a request a page sends; stored only as its network (IPv4 /24, IPv6 /48)",
  webdriver: "true when the page's navigator.webdriver is (the tag reports it): a browser driven by automation",
};
/** Example values of the fields the example impressions leave out. */
const OPTIONAL_EXAMPLES: Partial<Record<keyof Impression, string>> = { kind: "viewable" };

/**
 * Impressions for the document's examples, at `at` and a minute before: examples are made with the schema,
 * from the clock that checks them, so their `ts` is valid for as long as the process is younger than the
 * retention.
 */
export function exampleImpressions(at: number): [Impression, Impression] {
  return [
    { id: "7f9c2b1e-4d3a-4e8f-9b6c-2a1d0e5f7c3b", ts: at, userId: "u-42", adId: "ad-7" },
    { id: "01JD8X3K9QZ4VJ7M2N5P6R8S0T", ts: at - 60_000, userId: "u-17", adId: "ad-3" },
  ];
}

function identifier(field: string) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .regex(IDENTIFIER_PATTERN, `${field} must be 1-128 characters of A-Z a-z 0-9 . _ : -`);
}

function eventKind(field: string) {
  return z.enum(EVENT_KINDS, { error: () => `${field} must be one of ${EVENT_KINDS.join(", ")}` });
}

function epochMillis(field: string, limits: ImpressionLimits) {
  const now = limits.now ?? Date.now;
  const retentionMs = limits.retentionDays * DAY_MS;
  return z
    .number({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a number`) })
    .int(`${field} must be an integer (epoch milliseconds)`)
    .check((ctx) => {
      const at = now();
      if (ctx.value > at + limits.maxFutureSkewMs) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `${field} must not be more than ${limits.maxFutureSkewMs} ms in the future (epoch milliseconds)`,
        });
      } else if (ctx.value < at - retentionMs) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `${field} must not be older than ${limits.retentionDays} days (epoch milliseconds)`,
        });
      }
    });
}

/** A query-string value holds digits only; it is checked as the number it spells. */
function epochMillisParam(field: string, limits: ImpressionLimits, meta: z.core.GlobalMeta) {
  return (
    z
      .string()
      .regex(/^\d{1,16}$/, `${field} must be an integer (epoch milliseconds)`)
      // On the string, not the pipe: a document describes what is sent, before the transform.
      .meta(meta)
      .transform(Number)
      .pipe(epochMillis(field, limits))
  );
}

/** The fields the API sets: optional on the wire, checked loosely (TRAFFIC_LABEL_PATTERN). */
const API_FIELD_CHECKS: Record<keyof Stamp, z.ZodType> = {
  traffic: z.string().regex(TRAFFIC_LABEL_PATTERN, "traffic must be a label: a-z, 0-9 and _").optional(),
  ipPrefix: z.string().regex(IP_PREFIX_PATTERN, "ipPrefix must be an address and a prefix length").optional(),
};

/** What an HTTP sender may say of the viewer, each optional: in a JSON body, all three; in a pixel's URL, webdriver. */
function viewerFields(from: "json" | "query"): Record<string, z.ZodType> {
  const webdriver =
    from === "json"
      ? z.boolean({ error: "webdriver must be true or false" })
      : z
          .enum(["1", "0", "true", "false"], { error: "webdriver must be 1 or 0" })
          .meta({ description: FIELD_DESCRIPTIONS.webdriver, examples: ["1"] })
          .transform((value) => value === "1" || value === "true");
  if (from === "query") return { webdriver: webdriver.optional() };
  const userAgent = z
    .string({ error: "userAgent must be a string" })
    .min(1, "userAgent must not be empty")
    .max(USER_AGENT_MAX_LENGTH, `userAgent must be at most ${USER_AGENT_MAX_LENGTH} characters`);
  const ip = z.string({ error: "ip must be a string" }).refine(isIpAddress, "ip must be an IPv4 or IPv6 address");
  return {
    userAgent: userAgent
      .meta({ description: FIELD_DESCRIPTIONS.userAgent, examples: ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) …"] })
      .optional(),
    ip: ip.meta({ description: FIELD_DESCRIPTIONS.ip, examples: ["203.0.113.7"] }).optional(),
    webdriver: webdriver.meta({ description: FIELD_DESCRIPTIONS.webdriver, examples: [true] }).optional(),
  };
}

/**
 * Each field's check: a sender's fields and what it may say of the viewer (json, query), or every field of the
 * wire, the API's own optional (wire).
 */
function validators(limits: ImpressionLimits, from: "json" | "query" | "wire"): Record<string, z.ZodType> {
  const [example] = exampleImpressions((limits.now ?? Date.now)());
  const sent = SENDER_FIELDS.map((f) => {
    const value = example[f.name] ?? OPTIONAL_EXAMPLES[f.name];
    const meta = { description: FIELD_DESCRIPTIONS[f.name], examples: [from === "query" ? String(value) : value] };
    const validator: z.ZodType =
      f.kind === "identifier"
        ? identifier(f.name).meta(meta)
        : f.kind === "eventKind"
          ? eventKind(f.name).meta(meta)
          : from === "query"
            ? epochMillisParam(f.name, limits, meta)
            : epochMillis(f.name, limits).meta(meta);
    return [f.name, "optional" in f ? validator.optional() : validator];
  });
  const rest =
    from === "wire"
      ? IMPRESSION_FIELDS.filter((f) => f.setBy === "api").map((f) => [f.name, API_FIELD_CHECKS[f.name]])
      : Object.entries(viewerFields(from));
  return Object.fromEntries([...sent, ...rest]);
}

const notAnObject = {
  error: (issue: z.core.$ZodRawIssue) => (issue.code === "invalid_type" ? "an event must be a JSON object" : undefined),
};

/**
 * One impression as the HTTP API accepts it: unknown fields are rejected, so a sender's typo is not lost; `ts` is
 * optional (the API stamps its time of receipt before the event is written).
 */
export function impressionSchema(limits: ImpressionLimits): z.ZodType<SentImpression> {
  const [example] = exampleImpressions((limits.now ?? Date.now)());
  const fields = validators(limits, "json");
  const ts = fields.ts as z.ZodType;
  return z.strictObject({ ...fields, ts: ts.optional() }, notAnObject).meta({
    description: "one impression; unknown fields are rejected",
    examples: [example],
  }) as unknown as z.ZodType<SentImpression>;
}

/**
 * One impression as a worker reads it from Kafka: the same fields and checks, but unknown fields are ignored
 * (and not stored), so an API that knows a newer field never makes an older worker dead-letter an
 * acknowledged event during a rolling deploy. See "The wire format" in docs/DESIGN.md.
 */
export function wireImpressionSchema(limits: ImpressionLimits): z.ZodType<Impression> {
  return z.object(validators(limits, "wire"), notAnObject) as unknown as z.ZodType<Impression>;
}

/**
 * The impression fields of a query string (GET /pixel.gif), the event time optional, plus `extra` parameters
 * the route takes (say, its key); any other parameter is rejected.
 */
export function impressionQuerySchema<Extra extends z.core.$ZodLooseShape>(limits: ImpressionLimits, extra: Extra) {
  const fields = validators(limits, "query");
  const ts = fields.ts as z.ZodType;
  return z.strictObject(
    { ...fields, ts: ts.optional(), ...extra },
    {
      error: (issue) =>
        issue.code === "unrecognized_keys" ? `unknown query parameter: ${issue.keys.join(", ")}` : undefined,
    },
  );
}

export interface IssueDetail {
  path: string;
  message: string;
}

/** Zod issues as `{ path, message }` a sender can act on; the root is called "event". */
export function issueDetails(error: z.ZodError): IssueDetail[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.join(".") : "event",
    message: issue.message,
  }));
}
