import { IMPRESSION_FIELDS, type Impression } from "../../src/impression/fields.ts";

let made = 0;

/**
 * A valid impression for tests, from the field list: each identifier is `<field>-<prefix>-<n>` (unique per
 * call), the event time one second ago; `overrides` win (and may add fields, or break them on purpose).
 */
export function makeImpression(prefix: string, overrides: Record<string, unknown> = {}): Impression {
  made++;
  const event: Record<string, unknown> = {};
  for (const f of IMPRESSION_FIELDS) {
    event[f.name] = f.kind === "epochMillis" ? Date.now() - 1000 : `${f.name}-${prefix}-${made}`;
  }
  return { ...event, ...overrides } as Impression;
}
