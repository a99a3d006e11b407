import { parseArgs } from "node:util";
import { z } from "zod";

/** The command line is wrong: the CLI prints the message and the usage, and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export const ROUTES = ["event", "events", "pixel"] as const;
export type Route = (typeof ROUTES)[number];

export const USAGE = `usage: npm run load -- [options]

  --url U          the API's base URL (default http://127.0.0.1:3000)
  --route R        event (POST /event), events (POST /events, JSON array) or pixel (GET /pixel.gif); default event
  --batch K        events per POST /events request (default 100; --route events only)
  --rate N         events per second over all senders (default: as fast as --concurrency allows);
                   the summary says if it was not reached, why, and what to change
  --duration S     stop after S seconds (default 10)
  --events N       stop after N events instead (not with --duration)
  --concurrency C  requests in flight at once (default 10)
  --duplicates P   share of events that resend an earlier event's id, 0-1 (default 0)
  --late P         share of new events with a ts minutes in the past, 0-1 (default 0)
  --invalid P      share of events broken on purpose (the API answers 400), 0-1 (default 0)
  --ads A          distinct ads, Zipf-distributed popularity (default 10)
  --users U        distinct users (default 1000)
  --key K          ingest key: Authorization: Bearer K, or ?key=K for the pixel
  --json           print the summary as one JSON object on stdout, and nothing else there
  -h, --help       this text

Exit codes: 0 done, 1 failed requests (network errors, 5xx, unexpected 4xx) over 1% of the requests,
2 bad flags.`;

export interface LoadOptions {
  url: string;
  route: Route;
  /** Events per request: K for --route events, 1 otherwise. */
  batch: number;
  /** Events per second over all senders; undefined: no limit. */
  rate: number | undefined;
  /** Stop after this many ms (Infinity: only --events or SIGINT stops). */
  durationMs: number;
  /** Stop after this many events; undefined: no limit. */
  events: number | undefined;
  concurrency: number;
  duplicates: number;
  late: number;
  invalid: number;
  ads: number;
  users: number;
  key: string | undefined;
  json: boolean;
}

export const DEFAULTS = {
  url: "http://127.0.0.1:3000",
  route: "event",
  batch: 100,
  durationS: 10,
  concurrency: 10,
  ads: 10,
  users: 1000,
} as const;

/** The share of requests that may fail (network errors, 5xx, unexpected 4xx) before the exit code is 1. */
export const MAX_FAILURE_RATE = 0.01;

const options = {
  url: { type: "string" },
  route: { type: "string" },
  batch: { type: "string" },
  rate: { type: "string" },
  duration: { type: "string" },
  events: { type: "string" },
  concurrency: { type: "string" },
  duplicates: { type: "string" },
  late: { type: "string" },
  invalid: { type: "string" },
  ads: { type: "string" },
  users: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const DECIMAL = /^\s*[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?\s*$/i;

function number(flag: string, what: string, check: (n: number) => boolean) {
  return z
    .string()
    .refine((s) => DECIMAL.test(s) && check(Number(s)), { message: `--${flag} must be ${what}` })
    .transform(Number);
}
const positiveInt = (flag: string, max: number) =>
  number(flag, `a whole number from 1 to ${max}`, (n) => Number.isInteger(n) && n >= 1 && n <= max);
const share = (flag: string) => number(flag, "a share from 0 to 1, e.g. 0.05", (n) => n >= 0 && n <= 1);
const positive = (flag: string) => number(flag, "a number above 0", (n) => n > 0 && Number.isFinite(n));

const flagsSchema = z.object({
  url: z
    .string()
    .refine(
      (s) => URL.canParse(s) && ["http:", "https:"].includes(new URL(s).protocol),
      "--url must be an http:// or https:// URL, e.g. http://127.0.0.1:3000",
    )
    .default(DEFAULTS.url),
  route: z
    .string()
    .refine((s): s is Route => (ROUTES as readonly string[]).includes(s), {
      message: `--route must be one of ${ROUTES.join(", ")}`,
    })
    .default(DEFAULTS.route),
  batch: positiveInt("batch", 10_000).optional(),
  rate: positive("rate").optional(),
  duration: positive("duration").optional(),
  events: positiveInt("events", Number.MAX_SAFE_INTEGER).optional(),
  concurrency: positiveInt("concurrency", 10_000).default(DEFAULTS.concurrency),
  duplicates: share("duplicates").default(0),
  late: share("late").default(0),
  invalid: share("invalid").default(0),
  ads: positiveInt("ads", 1_000_000).default(DEFAULTS.ads),
  users: positiveInt("users", 100_000_000).default(DEFAULTS.users),
  key: z.string().min(1, "--key must not be empty").optional(),
  json: z.boolean().default(false),
});

export type Parsed = { help: true } | { help: false; options: LoadOptions };

/**
 * The load generator's options from `argv` (the arguments after the script); throws UsageError naming the
 * flag that is wrong. `openEnded`: without --duration or --events, run until stopped (the demo).
 */
export function parseLoadArgs(argv: string[], { openEnded = false } = {}): Parsed {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
    values = parsed.values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return { help: true };
  const { help: _, ...flags } = values;
  const result = flagsSchema.safeParse(flags);
  if (!result.success) throw new UsageError(result.error.issues.map((i) => i.message).join("; "));
  const v = result.data;
  if (v.batch !== undefined && v.route !== "events") throw new UsageError("--batch is only for --route events");
  if (v.duration !== undefined && v.events !== undefined) throw new UsageError("give --duration or --events, not both");
  if (v.duplicates + v.invalid > 1) throw new UsageError("--duplicates and --invalid together must not exceed 1");
  const route = v.route as Route;
  const durationMs =
    v.duration !== undefined
      ? v.duration * 1000
      : v.events !== undefined || openEnded
        ? Number.POSITIVE_INFINITY
        : DEFAULTS.durationS * 1000;
  return {
    help: false,
    options: {
      url: v.url.replace(/\/+$/, ""),
      route,
      batch: route === "events" ? (v.batch ?? DEFAULTS.batch) : 1,
      rate: v.rate,
      durationMs,
      events: v.events,
      concurrency: v.concurrency,
      duplicates: v.duplicates,
      late: v.late,
      invalid: v.invalid,
      ads: v.ads,
      users: v.users,
      key: v.key,
      json: v.json,
    },
  };
}
