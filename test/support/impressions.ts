import { type Impression, SENDER_FIELDS } from "../../src/impression/fields.ts";

let made = 0;

/**
 * A valid impression for tests, as a sender sends it, from the field list: each identifier is
 * `<field>-<prefix>-<n>` (unique per call), the event time one second ago, optional fields of other kinds (`kind`)
 * left out: an impression of an identified viewer, none of the fields the API sets; `overrides` win (and may add
 * fields, leave some out as undefined, or break them on purpose).
 */
export function makeImpression(
  prefix: string,
  overrides: Record<string, unknown> = {},
): Impression & { userId: string } {
  made++;
  const event: Record<string, unknown> = {};
  for (const f of SENDER_FIELDS) {
    if (f.kind === "epochMillis") event[f.name] = Date.now() - 1000;
    else if (f.kind === "identifier") event[f.name] = `${f.name}-${prefix}-${made}`;
  }
  return { ...event, ...overrides } as Impression & { userId: string };
}
