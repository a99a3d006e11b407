import { z } from "zod";
import { IDENTIFIER_PATTERN } from "../impression/schema.ts";

export const MAX_LIMIT = 10_000;
export const MAX_FILTER_ADS = 100;
export const MAX_SERIES_ADS = 20;

/** An integer query-string value in [min, max]; every failure (missing too) says the allowed range. */
function integerParam(name: string, min: number, max: number) {
  const range = `${name} must be an integer from ${min} to ${max}`;
  return z
    .string({
      error: (issue) => (issue.input === undefined ? `${name} is required: an integer from ${min} to ${max}` : range),
    })
    .regex(/^\d+$/, range)
    .transform(Number)
    .pipe(z.number().min(min, range).max(max, range));
}

/** `adId=a&adId=b` arrives as an array, `adId=a` as a string: both become an array of ids. */
function adIdsParam(maxAds: number) {
  const id = z.string().regex(IDENTIFIER_PATTERN, "adId must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  return z.preprocess(
    (value) => (typeof value === "string" ? [value] : value),
    z
      .array(id, { error: (issue) => (issue.input === undefined ? "adId is required (repeatable)" : undefined) })
      .max(maxAds, `at most ${maxAds} adId values`),
  );
}

/** The window in minutes: 1 up to the retention, beyond which ClickHouse has dropped the rows. */
function windowParam(retentionDays: number) {
  return integerParam("timeWindowMinutes", 1, retentionDays * 1440);
}

/** A misspelt parameter (say `timewindowminutes`) is an error, not silently ignored. */
const strict = {
  error: (issue: z.core.$ZodRawIssue) =>
    issue.code === "unrecognized_keys" ? `unknown query parameter: ${issue.keys.join(", ")}` : undefined,
};

export function statsQuerySchema(retentionDays: number) {
  return z.strictObject(
    {
      timeWindowMinutes: windowParam(retentionDays),
      adId: adIdsParam(MAX_FILTER_ADS).default([]),
      limit: integerParam("limit", 1, MAX_LIMIT).optional(),
    },
    strict,
  );
}

export function timeSeriesQuerySchema(retentionDays: number) {
  return z.strictObject(
    {
      timeWindowMinutes: windowParam(retentionDays),
      adId: adIdsParam(MAX_SERIES_ADS),
    },
    strict,
  );
}

const countsBody = z.record(z.string(), z.number().int().describe("impressions in the window"));

const timeSeriesBody = z.record(
  z.string(),
  z.array(
    z.object({ minute: z.string().describe("start of the minute, ISO 8601 UTC"), impressions: z.number().int() }),
  ),
);

const reachBody = z.record(
  z.string(),
  z.object({
    impressions: z.number().int(),
    reach: z.number().int().describe("distinct users"),
    frequency: z.number().describe("impressions per distinct user"),
  }),
);

const jsonSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { target: "draft-7", io: "output" });

/** As JSON Schema, like the API's other responses: replies go through fast-json-stringify. */
export const responses = {
  counts: jsonSchema(countsBody),
  timeSeries: jsonSchema(timeSeriesBody),
  reach: jsonSchema(reachBody),
};
