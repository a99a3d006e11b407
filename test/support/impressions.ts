import { type Impression, SENDER_FIELDS } from "../../src/impression/fields.ts";

let made = 0;

/**
 * A valid impression for tests, as a sender sends it, from the field list: each identifier is
 * `<field>-<prefix>-<n>` (unique per call), the event time one second ago, none of the fields the API sets;
 * `overrides` win (and may add fields, or break them on purpose).
 */
export function makeImpression(prefix: string, overrides: Record<string, unknown> = {}): Impression {
  made++;
  const event: Record<string, unknown> = {};
  for (const f of SENDER_FIELDS) {
    event[f.name] = f.kind === "epochMillis" ? Date.now() - 1000 : `${f.name}-${prefix}-${made}`;
  }
  return { ...event, ...overrides } as Impression;
}
