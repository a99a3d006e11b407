import { type Impression, type ImpressionLimits, issueDetails, wireImpressionSchema } from "../impression/schema.ts";
import type { ConsumedMessage } from "../kafka/consumer.ts";

/** Why a message is poison, as a metric label: the reason's text says what exactly. */
export type PoisonCode = "empty_value" | "malformed_json" | "invalid_impression";

export type Decoded = { ok: true; event: Impression } | { ok: false; code: PoisonCode; reason: string };

/**
 * Parses and validates a message value with the wire schema: the API's checks, unknown fields ignored. Time
 * limits are checked against the message's Kafka timestamp (when the API accepted it), not the worker's clock: an event the API accepted
 * must not turn invalid because the worker read it late.
 */
export function createDecoder(limits: Omit<ImpressionLimits, "now">): (message: ConsumedMessage) => Decoded {
  let acceptedAt = 0;
  const schema = wireImpressionSchema({ ...limits, now: () => acceptedAt });
  return (message) => {
    if (!message.value || message.value.length === 0) return { ok: false, code: "empty_value", reason: "empty value" };
    let json: unknown;
    try {
      json = JSON.parse(message.value.toString("utf8"));
    } catch (error) {
      return { ok: false, code: "malformed_json", reason: `malformed JSON: ${(error as Error).message}` };
    }
    acceptedAt = Number(message.timestamp);
    const parsed = schema.safeParse(json);
    if (parsed.success) return { ok: true, event: parsed.data };
    const details = issueDetails(parsed.error).map((d) => `${d.path}: ${d.message}`);
    return { ok: false, code: "invalid_impression", reason: `invalid impression: ${details.join("; ")}` };
  };
}
