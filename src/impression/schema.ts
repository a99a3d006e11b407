import { z } from "zod";

/**
 * Ids are 1-128 characters of A-Z a-z 0-9 . _ : - : this covers UUIDs, ULIDs and most vendor ids,
 * needs no escaping in JSON, URLs or logs, and any such string is a valid ClickHouse String.
 */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const DAY_MS = 86_400_000;

export interface ImpressionLimits {
  /** How far ahead of now a ts may be (senders' clock skew). */
  maxFutureSkewMs: number;
  /** Older events would be dropped by ClickHouse TTL at once, so they are rejected up front. */
  retentionDays: number;
  now?: () => number;
}

function identifier(field: string) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .regex(IDENTIFIER_PATTERN, `${field} must be 1-128 characters of A-Z a-z 0-9 . _ : -`);
}

/** One impression as the API accepts it and as it travels on Kafka. Unknown fields are rejected. */
export function impressionSchema(limits: ImpressionLimits) {
  const now = limits.now ?? Date.now;
  const retentionMs = limits.retentionDays * DAY_MS;
  const ts = z
    .number({ error: (issue) => (issue.input === undefined ? "ts is required" : "ts must be a number") })
    .int("ts must be an integer (epoch milliseconds)")
    .check((ctx) => {
      const at = now();
      if (ctx.value > at + limits.maxFutureSkewMs) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `ts must not be more than ${limits.maxFutureSkewMs} ms in the future (epoch milliseconds)`,
        });
      } else if (ctx.value < at - retentionMs) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `ts must not be older than ${limits.retentionDays} days (epoch milliseconds)`,
        });
      }
    });
  return z.strictObject(
    { id: identifier("id"), ts, userId: identifier("userId"), adId: identifier("adId") },
    { error: (issue) => (issue.code === "invalid_type" ? "an event must be a JSON object" : undefined) },
  );
}

export type Impression = z.infer<ReturnType<typeof impressionSchema>>;

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
