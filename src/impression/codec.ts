import { IMPRESSION_FIELDS } from "./fields.ts";
import type { Impression } from "./schema.ts";

/** `"name":` prefixes and whether the value is a string, computed once from the field list. */
const parts = IMPRESSION_FIELDS.map((f, i) => ({
  name: f.name,
  prefix: `${i === 0 ? "{" : ","}"${f.name}":`,
  quoted: f.kind === "identifier",
}));

/**
 * The Kafka value: compact JSON of a validated impression, fields in the list's order (the wire format in
 * docs/DESIGN.md). Built by hand because validated strings hold only characters that need no JSON escaping.
 */
export function encodeImpression(event: Impression): string {
  let json = "";
  for (const part of parts) {
    const value = event[part.name];
    json += part.quoted ? `${part.prefix}"${value}"` : `${part.prefix}${value}`;
  }
  return `${json}}`;
}
