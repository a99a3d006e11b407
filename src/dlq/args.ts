import { parseArgs } from "node:util";

/** The command line is wrong (exit code 2). */
export class CommandError extends Error {
  override name = "CommandError";
}

export const USAGE = `usage: npm run dlq -- <command> [--since T] [--reason R] [--limit N]

  list      one line per dead letter: where it is, when it was dead-lettered, where it came from and when it
            was produced there (when the API accepted it), its key, and why (the code, then the reason); then
            the count by code. Reads only.
  show      each dead letter whole: all that list says, the message's value and its headers. Reads only.
  replay    checks each dead letter's message again with the workers' rules (against the time the API accepted
            it) and writes the ones valid now to the impressions topic, keyed by their id, with their original
            value and timestamp (acks=all); says what it replayed and what it skipped, and why. Safe to run
            twice: the workers count a replayed id once.

  --since T   dead letters written at or after T: an ISO time (2026-12-01T10:00:00Z), epoch milliseconds, or a
              time ago (90s, 30m, 24h, 7d)
  --reason R  dead letters whose reason contains R (any case), or whose code is R
              (empty_value, malformed_json, invalid_impression)
  --limit N   at most N dead letters (after the other filters), oldest first in each partition

Kafka, the topics and the workers' rules come from the environment, as for the workers (KAFKA_BROKERS,
KAFKA_TOPIC, KAFKA_DLQ_TOPIC, RETENTION_DAYS, MAX_FUTURE_SKEW_MS).`;

export type DlqCommand = "list" | "show" | "replay";

export interface DlqFilters {
  /** Epoch milliseconds: dead letters written before it are left out. */
  since: number | undefined;
  reason: string | undefined;
  limit: number | undefined;
}

export type ParsedCommand = { command: "help" } | ({ command: DlqCommand } & DlqFilters);

const UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO time, epoch milliseconds, or a time ago (`30m`); epoch milliseconds, or undefined if unreadable. */
export function parseSince(text: string, now: number): number | undefined {
  const ago = /^(\d+)([smhd])$/.exec(text);
  if (ago) return now - Number(ago[1]) * (UNITS_MS[ago[2] as string] as number);
  if (/^\d{10,}$/.test(text)) return Number(text);
  // A date alone, or a date and time: an ISO form, not whatever Date.parse would guess.
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** The command `argv` (the arguments after the script) asks for; throws CommandError naming what is wrong. */
export function parseCommand(argv: string[], now: number): ParsedCommand {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  const options = {
    since: { type: "string" },
    reason: { type: "string" },
    limit: { type: "string" },
    help: { type: "boolean", short: "h" },
  } as const;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    throw new CommandError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: "help" };
  const [command, ...extra] = positionals;
  if (command === undefined) throw new CommandError("no command given: list, show or replay");
  if (command !== "list" && command !== "show" && command !== "replay") {
    throw new CommandError(`unknown command "${command}": list, show or replay`);
  }
  if (extra.length > 0) throw new CommandError(`unexpected argument "${extra[0]}"`);
  let since: number | undefined;
  if (values.since !== undefined) {
    since = parseSince(values.since, now);
    if (since === undefined) {
      throw new CommandError(
        `--since "${values.since}" is not a time: an ISO time (2026-12-01T10:00:00Z), epoch ms, or 90s, 30m, 24h, 7d`,
      );
    }
  }
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || limit < 1) {
      throw new CommandError(`--limit "${values.limit}" is not a whole number of 1 or more`);
    }
  }
  if (values.reason === "") throw new CommandError("--reason needs a text or a code");
  return { command, since, reason: values.reason, limit };
}
