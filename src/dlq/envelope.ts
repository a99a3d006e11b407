import type { PoisonCode } from "../worker/decode.ts";

/** A dead letter's envelope, as src/worker/dead-letters.ts writes it. */
export interface Envelope {
  reason: string;
  code: PoisonCode | undefined;
  source: { topic: string; partition: number; offset: string; timestamp: number | undefined };
  key: string | null;
  value: string | null;
}

/** What the older envelopes (without `code`) said, by the start of their reason (src/worker/decode.ts). */
const CODE_BY_REASON: [prefix: string, code: PoisonCode][] = [
  ["empty value", "empty_value"],
  ["malformed JSON", "malformed_json"],
  ["invalid impression", "invalid_impression"],
];

const CODES = new Set<string>(CODE_BY_REASON.map(([, code]) => code));

/** The envelope of a dead letter's value, or undefined if it is not one this app wrote. */
export function parseEnvelope(value: string | undefined): Envelope | undefined {
  let json: unknown;
  try {
    json = JSON.parse(value ?? "");
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null) return undefined;
  const { reason, code, source, key, value: original } = json as Record<string, unknown>;
  if (typeof reason !== "string" || typeof source !== "object" || source === null) return undefined;
  const { topic, partition, offset, timestamp } = source as Record<string, unknown>;
  if (typeof topic !== "string" || typeof partition !== "number" || typeof offset !== "string") return undefined;
  const acceptedAt = typeof timestamp === "string" && /^\d+$/.test(timestamp) ? Number(timestamp) : undefined;
  return {
    reason,
    code:
      typeof code === "string" && CODES.has(code)
        ? (code as PoisonCode)
        : CODE_BY_REASON.find(([prefix]) => reason.startsWith(prefix))?.[1],
    source: { topic, partition, offset, timestamp: acceptedAt },
    key: typeof key === "string" ? key : null,
    value: typeof original === "string" ? original : null,
  };
}

/** `--reason`: the code itself, or a part of the reason's text in any case. */
export function reasonMatches(envelope: Envelope | undefined, wanted: string): boolean {
  if (!envelope) return false;
  return envelope.code === wanted || envelope.reason.toLowerCase().includes(wanted.toLowerCase());
}
