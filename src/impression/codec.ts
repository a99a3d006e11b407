import { IMPRESSION_FIELDS } from "./fields.ts";
import { IDENTIFIER_PATTERN, type Impression, type ImpressionLimits, type SentImpression } from "./schema.ts";

const DAY_MS = 86_400_000;

/** `"name":` prefixes, with a string's opening quote, and each field's kind, computed once from the field list. */
const parts = IMPRESSION_FIELDS.map((f, i) => ({
  name: f.name,
  prefix: `${i === 0 ? "{" : ","}"${f.name}":${f.kind === "identifier" ? '"' : ""}`,
  kind: f.kind,
}));
const FIELD_NAMES: ReadonlySet<string> = new Set(IMPRESSION_FIELDS.map((f) => f.name));
const QUOTE = 0x22;
const CLOSING_BRACE = 0x7d;
/** Each field's text while one impression is encoded (encoding is synchronous, so one array serves all). */
const texts = new Array<string>(parts.length);

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
 * three times the garbage (docs/BENCHMARKS.md). An event sent without `ts` gets `receivedAt`: the wire always
 * carries one.
 */
export function encodeImpressionBytes(event: Impression): Buffer;
export function encodeImpressionBytes(event: SentImpression, receivedAt: number): Buffer;
export function encodeImpressionBytes(event: SentImpression, receivedAt?: number): Buffer {
  let length = 1;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as (typeof parts)[number];
    const text = String(event[part.name] ?? receivedAt);
    texts[i] = text;
    length += part.prefix.length + text.length + (part.kind === "identifier" ? 1 : 0);
  }
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as (typeof parts)[number];
    at = writeAscii(bytes, at, part.prefix);
    at = writeAscii(bytes, at, texts[i] as string);
    if (part.kind === "identifier") bytes[at++] = QUOTE;
  }
  bytes[at] = CLOSING_BRACE;
  return bytes;
}

/** The Kafka value as a string (encodeImpressionBytes' text). */
export function encodeImpression(event: Impression): string {
  return encodeImpressionBytes(event).toString("latin1");
}

/**
 * A check that `item` keeps impressionSchema's rules (an object of the listed fields only, identifiers matching
 * IDENTIFIER_PATTERN, `ts` absent or an integer within the limits) without copying it, where the schema's parse allocates a
 * copy and state for every check (a third of /events' garbage, docs/BENCHMARKS.md). The schema stays the judge:
 * an item refused here is parsed by it, which accepts it or says why not; src/impression/codec.test.ts checks that
 * nothing the schema refuses is accepted here.
 */
export function impressionCheck(limits: ImpressionLimits): (item: unknown) => item is SentImpression {
  const now = limits.now ?? Date.now;
  const retentionMs = limits.retentionDays * DAY_MS;
  return (item): item is SentImpression => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return false;
    // Own keys of the list only; each field's check below also requires the fields that must be there.
    for (const key in item) if (!Object.hasOwn(item, key) || !FIELD_NAMES.has(key)) return false;
    const event = item as Record<string, unknown>;
    const at = now();
    for (const part of parts) {
      const value = event[part.name];
      switch (part.kind) {
        case "identifier":
          if (typeof value !== "string" || !IDENTIFIER_PATTERN.test(value)) return false;
          break;
        case "epochMillis":
          // Optional: the API stamps its time of receipt.
          if (value === undefined) break;
          if (!Number.isSafeInteger(value)) return false;
          if ((value as number) > at + limits.maxFutureSkewMs || (value as number) < at - retentionMs) return false;
          break;
        default:
          // A kind with no check here yet: the schema judges it.
          return false;
      }
    }
    return true;
  };
}

/**
 * For batches: the Kafka value of an item that passes impressionCheck (without `ts`, stamped `receivedAt`), or
 * undefined to let the schema judge it.
 */
export function validImpressionEncoder(
  limits: ImpressionLimits,
): (item: unknown, receivedAt: number) => Buffer | undefined {
  const valid = impressionCheck(limits);
  return (item, receivedAt) => (valid(item) ? encodeImpressionBytes(item, receivedAt) : undefined);
}
