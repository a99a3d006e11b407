import { z } from "zod";
import { DEFAULT_EVENT_KIND, EVENT_KINDS } from "../impression/fields.ts";
import { IDENTIFIER_PATTERN } from "../impression/schema.ts";
import { MAX_RESULT_ROWS } from "./reader.ts";

export const MAX_LIMIT = 10_000;
export const MAX_FILTER_ADS = 100;
export const MAX_SERIES_ADS = 20;
/**
 * A time series answers (minutes + 1) × ads points, each built and serialized by the query process: a day of
 * 13 ads (18,733) or a week of one (10,081) fits, the 30 days × 20 ads of a hostile request (864,020) do not.
 * Every point may be a row of ClickHouse's answer, so this is MAX_RESULT_ROWS.
 */
export const MAX_SERIES_POINTS = MAX_RESULT_ROWS;
/** Reach reads every raw event of its window (distinct users cannot be added up from a rollup): a day at most. */
export const REACH_MAX_MINUTES = 1440;

/** An integer query-string value in [min, max]; every failure (missing too) says the allowed range. */
function integerParam(
  name: string,
  min: number,
  max: number,
  doc: { description: string; example: number; why?: string },
) {
  const range = `${name} must be an integer from ${min} to ${max}${doc.why ? ` (${doc.why})` : ""}`;
  return (
    z
      .string({
        error: (issue) => (issue.input === undefined ? `${name} is required: an integer from ${min} to ${max}` : range),
      })
      .regex(/^\d+$/, range)
      // On the string, not the pipe: a document describes what is sent, before the transform.
      .meta({ description: doc.description, examples: [String(doc.example)] })
      .transform(Number)
      .pipe(z.number().min(min, range).max(max, range))
  );
}

/** `adId=a&adId=b` arrives as an array, `adId=a` as a string: both become an array of ids. */
function adIdsParam(maxAds: number, description: string) {
  const id = z.string().regex(IDENTIFIER_PATTERN, "adId must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  return z.preprocess(
    (value) => (typeof value === "string" ? [value] : value),
    z
      .array(id, { error: (issue) => (issue.input === undefined ? "adId is required (repeatable)" : undefined) })
      .max(maxAds, `at most ${maxAds} adId values`)
      .meta({
        description: `${description}: repeatable (adId=a&adId=b), up to ${maxAds}`,
        examples: [["ad-7", "ad-3"]],
      }),
  );
}

/** The window in minutes: 1 up to the retention, beyond which ClickHouse has dropped the rows. */
function windowParam(retentionDays: number) {
  const max = retentionDays * 1440;
  return integerParam("timeWindowMinutes", 1, max, {
    description: `the window (now − N minutes, now] on event time: N from 1 to ${max} (the retention)`,
    example: 60,
  });
}

/** Reach's window: at most REACH_MAX_MINUTES (and the retention), as it reads raw events. */
function reachWindowParam(retentionDays: number) {
  const max = Math.min(retentionDays * 1440, REACH_MAX_MINUTES);
  return integerParam("timeWindowMinutes", 1, max, {
    description: `the window (now − N minutes, now] on event time: N from 1 to ${max} (reach reads every raw event of it)`,
    example: 60,
    why: "reach reads every event of the window",
  });
}

/** Which impressions a count takes, by traffic label (docs/STATS.md, "Invalid traffic"). */
export const TRAFFIC_VIEWS = ["net", "gross", "invalid"] as const;
export type TrafficView = (typeof TRAFFIC_VIEWS)[number];

const trafficParam = z
  .enum(TRAFFIC_VIEWS, { error: `traffic must be one of ${TRAFFIC_VIEWS.join(", ")}` })
  .default("net")
  .meta({
    description:
      "net (default): events labelled valid or unclassified; gross: every event counted once, invalid traffic " +
      "included; invalid: only the invalid ones (of every kind asked: impressions, viewable, clicks, …)",
    examples: ["gross"],
  });

/** The kind of event counted: `event=viewable`, say; impressions when left out. */
const eventParam = z
  .enum(EVENT_KINDS, { error: () => `event must be one of ${EVENT_KINDS.join(", ")}` })
  .default(DEFAULT_EVENT_KIND)
  .meta({
    description: `the kind of event counted: ${EVENT_KINDS.join(", ")}; impression by default`,
    examples: ["viewable"],
  });

/** A misspelt parameter (say `timewindowminutes`) is an error, not silently ignored. */
const strict = {
  error: (issue: z.core.$ZodRawIssue) =>
    issue.code === "unrecognized_keys" ? `unknown query parameter: ${issue.keys.join(", ")}` : undefined,
};

function rankedQuerySchema(window: ReturnType<typeof windowParam>) {
  return z.strictObject(
    {
      timeWindowMinutes: window,
      event: eventParam,
      adId: adIdsParam(MAX_FILTER_ADS, "only these ads").default([]),
      limit: integerParam("limit", 1, MAX_LIMIT, {
        description: `only the N ads with the most (ties: smaller ad id first), N from 1 to ${MAX_LIMIT}`,
        example: 10,
      }).optional(),
      traffic: trafficParam,
    },
    strict,
  );
}

export function statsQuerySchema(retentionDays: number) {
  return rankedQuerySchema(windowParam(retentionDays));
}

/** GET /stats/ivt: like /stats, but every label is counted, so it takes no `traffic`; impressions only. */
export function ivtQuerySchema(retentionDays: number) {
  return rankedQuerySchema(windowParam(retentionDays)).omit({ traffic: true, event: true });
}

/** GET /stats/summary counts several kinds at once: /stats' parameters but `event`. */
export function summaryQuerySchema(retentionDays: number) {
  return statsQuerySchema(retentionDays).omit({ event: true });
}

export function reachQuerySchema(retentionDays: number) {
  return rankedQuerySchema(reachWindowParam(retentionDays));
}

/** The points a series of `ads` ads over `minutes` answers at most: a window touches minutes + 1 minutes. */
export function seriesPoints(minutes: number, ads: number): number {
  return (minutes + 1) * ads;
}

export function timeSeriesQuerySchema(retentionDays: number) {
  return z
    .strictObject(
      {
        timeWindowMinutes: windowParam(retentionDays),
        event: eventParam,
        adId: adIdsParam(MAX_SERIES_ADS, "the ads to chart"),
        traffic: trafficParam,
      },
      strict,
    )
    .superRefine(({ timeWindowMinutes: minutes, adId: ads }, ctx) => {
      const points = seriesPoints(minutes, ads.length);
      if (points <= MAX_SERIES_POINTS) return;
      const longest = Math.floor(MAX_SERIES_POINTS / ads.length) - 1;
      ctx.addIssue({
        code: "custom",
        path: ["timeWindowMinutes"],
        message:
          `${ads.length} ads over ${minutes} minutes are ${points} points, more than ${MAX_SERIES_POINTS}: ` +
          `ask for fewer adId values or a shorter window (at most ${longest} minutes for ${ads.length} ads)`,
      });
    });
}

const countsBody = z.record(z.string(), z.number().int().describe("events of the kind asked in the window")).meta({
  description: "events of the kind asked (impressions by default) per ad id; ads without any are absent",
  examples: [{ "ad-7": 1204, "ad-3": 998 }],
});

const timeSeriesBody = z
  .record(
    z.string(),
    z.array(
      z.object({ minute: z.string().describe("start of the minute, ISO 8601 UTC"), impressions: z.number().int() }),
    ),
  )
  .meta({
    description: "per requested ad, every minute the window touches, oldest first, zeros included",
    examples: [
      {
        "ad-7": [
          { minute: "2026-12-01T10:28:00.000Z", impressions: 4 },
          { minute: "2026-12-01T10:29:00.000Z", impressions: 17 },
          { minute: "2026-12-01T10:30:00.000Z", impressions: 6 },
        ],
      },
    ],
  });

const reachBody = z
  .record(
    z.string(),
    z.object({
      impressions: z.number().int().describe("every event of the kind asked, identified viewer or not"),
      reach: z.number().int().describe("distinct identified users"),
      frequency: z
        .number()
        .nullable()
        .describe("events of identified users per distinct identified user; null when none was identified"),
    }),
  )
  .meta({
    description: "impressions, reach and frequency per ad id; reach and frequency count identified users only",
    examples: [{ "ad-3": { impressions: 998, reach: 412, frequency: 2.4223300970873787 } }],
  });

const rateOf = (what: string) => z.number().min(0).nullable().describe(`${what}; null when its base is 0`);

const summaryBody = z
  .record(
    z.string(),
    z.object({
      impressions: z.number().int().describe("impressions (began to render)"),
      viewable: z.number().int().describe("viewable impressions (the MRC's rule, measured by the page tag)"),
      viewabilityRate: rateOf("viewable / impressions"),
      clicks: z.number().int().describe("clicks, one per impression at most"),
      ctr: rateOf("clicks / impressions (click-through rate)"),
      starts: z.number().int().describe("video ads: impressions whose video started"),
      completes: z.number().int().describe("video ads: impressions whose video played to the end"),
      completionRate: rateOf("completes / starts (video completion rate)"),
    }),
  )
  .meta({
    description:
      "per ad id, exact: each kind counted once per impression id, net of invalid traffic unless `traffic` says " +
      "otherwise; ads with none of these events are absent",
    examples: [
      {
        "ad-7": {
          impressions: 1204,
          viewable: 843,
          viewabilityRate: 0.7001661129568106,
          clicks: 12,
          ctr: 0.009966777408637873,
          starts: 0,
          completes: 0,
          completionRate: null,
        },
      },
    ],
  });

const labelCount = (description: string) => z.number().int().min(0).describe(description);

const breakdownBody = z.object({
  gross: labelCount("every impression, counted once, whatever its label"),
  net: labelCount("valid + unclassified: what GET /stats counts by default"),
  valid: labelCount("impressions every rule passed"),
  unclassified: labelCount("impressions sent without evidence about the viewer (counted in net)"),
  invalid: labelCount("gross − net: the sum of reasons"),
  reasons: z
    .record(z.string(), z.number().int())
    .describe("invalid impressions by the first rule that fired; reasons without any are absent"),
});

const ivtBody = z
  .object({
    total: breakdownBody.describe(
      "over every ad the query covers (its adId filter, a tenant key's ads), whatever limit",
    ),
    ads: z
      .record(z.string(), breakdownBody)
      .describe("per ad id; with limit, the ads with the most impressions (gross); ads without any are absent"),
  })
  .meta({
    description: "impressions of the window by traffic label: gross, net and invalid by reason, in total and per ad",
    examples: [
      {
        total: {
          gross: 1500,
          net: 1380,
          valid: 1300,
          unclassified: 80,
          invalid: 120,
          reasons: { bot: 70, prefetch: 50 },
        },
        ads: {
          "ad-7": {
            gross: 1000,
            net: 910,
            valid: 860,
            unclassified: 50,
            invalid: 90,
            reasons: { bot: 60, prefetch: 30 },
          },
          "ad-3": {
            gross: 500,
            net: 470,
            valid: 440,
            unclassified: 30,
            invalid: 30,
            reasons: { bot: 10, prefetch: 20 },
          },
        },
      },
    ],
  });

/** GET /stats/pipeline takes no parameter; a misspelt one is refused like anywhere else. */
export const pipelineQuerySchema = z.strictObject({}, strict);

const count = (description: string) => z.number().int().min(0).describe(description);

const pipelineBody = z
  .object({
    measuredAt: z.string().describe("when the API read the engines, ISO 8601 UTC"),
    received: count("events written to the impressions topic: the sum of its log-end offsets"),
    counted: count("rows of the raw impressions table: each impression counted once"),
    deadLetters: count("messages written to the dead-letter topic: the sum of its log-end offsets"),
    lag: count("messages the worker group has not committed yet"),
    duplicates: count(
      "derived, not counted: received − counted − dead letters − lag, at least 0 (copies the workers dropped)",
    ),
    newestEventTime: z.string().nullable().describe("the newest counted event time (ts), ISO 8601 UTC; null if none"),
    freshnessMs: z
      .number()
      .int()
      .nullable()
      .describe("measuredAt − newestEventTime in ms (negative if a sender's clock runs ahead); null if none"),
  })
  .meta({
    description: "the pipeline's totals since the topics were made; rates come from two successive answers",
    examples: [
      {
        measuredAt: "2026-12-01T10:30:15.250Z",
        received: 120_431,
        counted: 118_902,
        deadLetters: 3,
        lag: 412,
        duplicates: 1114,
        newestEventTime: "2026-12-01T10:30:14.803Z",
        freshnessMs: 447,
      },
    ],
  });

export type PipelineStatus = z.infer<typeof pipelineBody>;

/** Response bodies: documented and serialized from these (serializerCompiler in src/http/schemas.ts). */
export const responses = {
  counts: countsBody,
  timeSeries: timeSeriesBody,
  reach: reachBody,
  summary: summaryBody,
  ivt: ivtBody,
  pipeline: pipelineBody,
};
