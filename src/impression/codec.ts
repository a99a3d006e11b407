import { isIpAddress } from "../ip-address.ts";
import { EVENT_KINDS, IMPRESSION_FIELDS, type Stamp, VIEWER_FIELDS } from "./fields.ts";
import {
  IDENTIFIER_PATTERN,
  type Impression,
  type ImpressionLimits,
  type SentImpression,
  USER_AGENT_MAX_LENGTH,
} from "./schema.ts";

const DAY_MS = 86_400_000;

/**
 * `"name":` prefixes, with a string's opening quote, each field's kind and who sets it, and what an optional field
 * stores when absent, computed once from the field list. The first field (`id`) is always there, so it alone opens
 * the object.
 */
const parts = IMPRESSION_FIELDS.map((f, i) => ({
  name: f.name,
  prefix: `${i === 0 ? "{" : ","}"${f.name}":${f.kind === "epochMillis" ? "" : '"'}`,
  quoted: f.kind !== "epochMillis",
  kind: f.kind,
  setBy: f.setBy,
  optional: "optional" in f,
  implied: "stored" in f ? f.stored : undefined,
}));
const KINDS: ReadonlySet<unknown> = new Set(EVENT_KINDS);
const FIELD_NAMES: ReadonlySet<string> = new Set([
  ...IMPRESSION_FIELDS.filter((f) => f.setBy === "sender").map((f) => f.name),
  ...VIEWER_FIELDS.map((f) => f.name),
]);
const QUOTE = 0x22;
const CLOSING_BRACE = 0x7d;
/** Each field's text while one impression is encoded, undefined if left out (encoding is synchronous: one array serves all). */
const texts = new Array<string | undefined>(parts.length);

/** ASCII text's bytes at `at`, by char code: for texts this short, twice as fast as `write(text, at, "latin1")`. */
function writeAscii(bytes: Buffer, at: number, text: string): number {
  let position = at;
  for (let i = 0; i < text.length; i++) bytes[position++] = text.charCodeAt(i);
  return position;
}

/**
 * The Kafka value: compact JSON of a validated impression, fields in the list's order (the wire format in
 * docs/DESIGN.md), written straight into one buffer. Validated fields hold only ASCII characters that need no
 * JSON escaping, so their Latin-1 bytes are their UTF-8 bytes; a string and then its copy as bytes would be
 * three times the garbage (docs/BENCHMARKS-ARCHIVE.md). An event sent without `ts` gets `receivedAt`: the wire always
 * carries one. An optional field that is absent, or holds what its row stores when it is absent (`kind`
 * impression), is left out: an impression's bytes are what they were before kinds existed. The API's own fields
 * come from `stamp` (a field it does not hold is left out), never from the event; what a sender said of the viewer
 * is not written.
 */
export function encodeImpressionBytes(event: Impression): Buffer;
export function encodeImpressionBytes(event: SentImpression, receivedAt: number, stamp?: Stamp): Buffer;
export function encodeImpressionBytes(event: SentImpression | Impression, receivedAt?: number, stamp?: Stamp): Buffer {
  let length = 1;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as (typeof parts)[number];
    const value =
      part.setBy === "api"
        ? (stamp ?? (event as Impression))[part.name as keyof Stamp]
        : (event as Record<string, unknown>)[part.name];
    const text =
      value === undefined
        ? part.optional || part.setBy === "api"
          ? undefined
          : String(receivedAt)
        : value === part.implied
          ? undefined
          : String(value);
    texts[i] = text;
    if (text !== undefined) length += part.prefix.length + text.length + (part.quoted ? 1 : 0);
  }
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    const text = texts[i];
    if (text === undefined) continue;
    const part = parts[i] as (typeof parts)[number];
    at = writeAscii(bytes, at, part.prefix);
    at = writeAscii(bytes, at, text);
    if (part.quoted) bytes[at++] = QUOTE;
  }
  bytes[at] = CLOSING_BRACE;
  return bytes;
}

/** The Kafka value as a string (encodeImpressionBytes' text). */
export function encodeImpression(event: Impression): string {
  return encodeImpressionBytes(event).toString("latin1");
}

/**
 * A check that `item` keeps impressionSchema's rules (an object of the sender's fields and the viewer's only,
 * identifiers matching IDENTIFIER_PATTERN, optional ones absent, `kind` one of EVENT_KINDS, `ts` absent or an
 * integer within the limits, the viewer's fields absent or valid) without copying it, where the schema's parse
 * allocates a copy and state for every check (a third of /events' garbage, docs/BENCHMARKS-ARCHIVE.md). The schema stays
 * the judge: an item refused here is parsed by it, which accepts it or says why not; src/impression/codec.test.ts
 * checks that nothing the schema refuses is accepted here.
 */
export function impressionCheck(limits: ImpressionLimits): (item: unknown) => item is SentImpression {
  const now = limits.now ?? Date.now;
  const retentionMs = limits.retentionDays * DAY_MS;
  return (item): item is SentImpression => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return false;
    // Own keys of the lists only; each field's check below also requires the fields that must be there.
    for (const key in item) if (!Object.hasOwn(item, key) || !FIELD_NAMES.has(key)) return false;
    const event = item as Record<string, unknown>;
    const at = now();
    for (const part of parts) {
      const value = event[part.name];
      switch (part.kind) {
        case "identifier":
          if (value === undefined && part.optional) break;
          if (typeof value !== "string" || !IDENTIFIER_PATTERN.test(value)) return false;
          break;
        case "eventKind":
          if (value === undefined || KINDS.has(value)) break;
          return false;
        case "epochMillis":
          // Optional: the API stamps its time of receipt.
          if (value === undefined) break;
          if (!Number.isSafeInteger(value)) return false;
          if ((value as number) > at + limits.maxFutureSkewMs || (value as number) < at - retentionMs) return false;
          break;
        case "trafficLabel":
        case "ipPrefix":
          // Set by the API only: FIELD_NAMES already refused them.
          break;
        default:
          // A kind with no check here yet: the schema judges it.
          return false;
      }
    }
    return viewerFieldsValid(event);
  };
}

/** The viewer's fields are each absent or valid (what impressionSchema's viewer fields accept). */
function viewerFieldsValid(event: Record<string, unknown>): boolean {
  const { userAgent, ip, webdriver } = event;
  if (userAgent !== undefined) {
    if (typeof userAgent !== "string" || userAgent.length === 0 || userAgent.length > USER_AGENT_MAX_LENGTH) {
      return false;
    }
  }
  if (ip !== undefined && (typeof ip !== "string" || !isIpAddress(ip))) return false;
  return webdriver === undefined || typeof webdriver === "boolean";
}
