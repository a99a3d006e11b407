import { ProduceAcks, Producer, stringSerializers } from "@platformatic/kafka";
import type { Config } from "../config.ts";
import { keyPartitioner } from "../kafka/partitioner.ts";
import { createDecoder } from "../worker/decode.ts";
import type { DlqCommand, DlqFilters } from "./args.ts";
import { reasonMatches } from "./envelope.ts";
import { type DeadLetter, openDeadLetters } from "./reader.ts";

/** Where a command writes: its report (stdout) and its progress on long runs (stderr). */
export interface DlqOutput {
  line(text: string): void;
  progress(text: string): void;
  /** How often progress is said while a command runs; 2 s unless a test asks for more. */
  progressEveryMs?: number;
}

/** What a replay did: dead letters written again to the impressions topic, and those left, with why. */
export interface ReplaySummary {
  matched: number;
  replayed: number;
  skipped: { letter: DeadLetter; why: string }[];
}

const PROGRESS_EVERY_MS = 2_000;
/** Replayed messages per produce request: bounded memory whatever the DLQ holds. */
const REPLAY_BATCH = 500;
const iso = (ms: number) => new Date(ms).toISOString();
const where = (letter: DeadLetter) => `${letter.partition}:${letter.offset}`;
const from = ({ envelope }: DeadLetter) =>
  envelope ? `${envelope.source.topic} ${envelope.source.partition}:${envelope.source.offset}` : "?";
const oneLine = (text: string, max = 160) => {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/**
 * Runs `list`, `show` or `replay` over the dead letters that pass the filters, oldest first in each partition;
 * resolves with the replay's summary for `replay`.
 */
export async function runDlq(
  command: DlqCommand,
  filters: DlqFilters,
  config: Config,
  output: DlqOutput,
): Promise<ReplaySummary | undefined> {
  const source = await openDeadLetters({
    brokers: config.KAFKA_BROKERS,
    clientId: `${config.KAFKA_CLIENT_ID}-dlq-cli`,
    topic: config.KAFKA_DLQ_TOPIC,
    since: filters.since,
  });
  let read = 0;
  let matched = 0;
  const replay = command === "replay" ? replayer(config) : undefined;
  const progress = setInterval(() => {
    const done = replay ? `, replayed ${replay.summary.replayed}, skipped ${replay.summary.skipped.length}` : "";
    output.progress(`read ${read} of ${source.total} dead letters, ${matched} matching${done}`);
  }, output.progressEveryMs ?? PROGRESS_EVERY_MS);
  progress.unref();
  const byCode = new Map<string, number>();
  try {
    for await (const letter of source.letters) {
      read++;
      if (filters.reason !== undefined && !reasonMatches(letter.envelope, filters.reason)) continue;
      matched++;
      const code = letter.envelope?.code ?? "unreadable";
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
      if (command === "list") output.line(listLine(letter));
      else if (command === "show") output.line(showBlock(letter));
      else await replay?.take(letter, output);
      if (filters.limit !== undefined && matched >= filters.limit) break;
    }
    await replay?.flush();
  } finally {
    clearInterval(progress);
    await Promise.allSettled([source.close(), replay?.close()]);
  }
  const codes = [...byCode]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");
  const of = `in ${config.KAFKA_DLQ_TOPIC}${filters.since === undefined ? "" : ` since ${iso(filters.since)}`}`;
  if (matched === 0) output.line(`no dead letters ${of} match`);
  else if (!replay) output.line(`${matched} dead letter${matched === 1 ? "" : "s"} ${of} (${codes})`);
  else {
    const { replayed, skipped } = replay.summary;
    output.line(
      `replayed ${replayed} of ${matched} dead letters ${of} to ${config.KAFKA_TOPIC}; skipped ${skipped.length}` +
        (skipped.length > 0 ? " (listed above)" : ""),
    );
    return { ...replay.summary, matched };
  }
  return undefined;
}

/** When the original message was produced (its Kafka timestamp, when the API accepted it); `?` if not kept. */
const produced = ({ envelope }: DeadLetter) =>
  envelope?.source.timestamp === undefined ? "?" : iso(envelope.source.timestamp);

function listLine(letter: DeadLetter): string {
  const { envelope } = letter;
  const reason = envelope ? `${envelope.code ?? "?"}  ${oneLine(envelope.reason, 120)}` : "not an envelope of this app";
  return (
    `${where(letter)}  ${iso(letter.writtenAt)}  from ${from(letter)}  produced ${produced(letter)}  ` +
    `key=${envelope?.key ?? "-"}  ${reason}`
  );
}

function showBlock(letter: DeadLetter): string {
  const { envelope } = letter;
  const headers = Object.entries(letter.headers).map(([k, v]) => `${k}=${v}`);
  const lines = [`dead letter ${where(letter)}, written ${iso(letter.writtenAt)}`];
  if (!envelope) lines.push(`  not an envelope of this app: ${letter.raw}`);
  else {
    lines.push(
      `  reason:   ${envelope.reason}`,
      `  code:     ${envelope.code ?? "?"}`,
      `  source:   ${from(letter)}`,
      `  produced: ${produced(letter)}`,
      `  key:      ${envelope.key ?? "(none)"}`,
      `  value:    ${envelope.value ?? "(none)"}`,
    );
  }
  lines.push(`  headers:  ${headers.join(", ") || "(none)"}`, "");
  return lines.join("\n");
}

/**
 * Checks each dead letter's message again with the workers' decoder, against the time the API accepted it (the
 * envelope's source timestamp; the dead letter's own for envelopes written before it was kept), and writes the
 * valid ones to the impressions topic as the API would: keyed by the id (so on the partition the API would pick,
 * `keyPartitioner`), acks=all, with the original value and timestamp, so the workers judge them as they would
 * have. A replayed copy of an id the workers already counted is a duplicate to them: replaying twice counts once.
 */
function replayer(config: Config) {
  const decode = createDecoder({ maxFutureSkewMs: config.MAX_FUTURE_SKEW_MS, retentionDays: config.RETENTION_DAYS });
  const producer = new Producer({
    clientId: `${config.KAFKA_CLIENT_ID}-dlq-replay`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
    partitioner: keyPartitioner,
    retries: 3,
  });
  const summary = { replayed: 0, skipped: [] as ReplaySummary["skipped"] };
  let pending: { topic: string; key: string; value: string; timestamp: bigint }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const messages = pending;
    pending = [];
    await producer.send({ messages, acks: ProduceAcks.ALL });
    summary.replayed += messages.length;
  };
  const skip = (letter: DeadLetter, why: string, output: DlqOutput) => {
    summary.skipped.push({ letter, why });
    output.line(`skipped ${where(letter)} (from ${from(letter)}, key ${letter.envelope?.key ?? "-"}): ${why}`);
  };
  return {
    summary,
    flush,
    close: () => producer.close(),
    async take(letter: DeadLetter, output: DlqOutput) {
      const { envelope } = letter;
      if (!envelope) return skip(letter, "not an envelope of this app", output);
      if (envelope.source.topic !== config.KAFKA_TOPIC) {
        return skip(letter, `came from topic ${envelope.source.topic}, not ${config.KAFKA_TOPIC}`, output);
      }
      const acceptedAt = BigInt(envelope.source.timestamp ?? letter.writtenAt);
      const decoded = decode({
        topic: envelope.source.topic,
        partition: envelope.source.partition,
        offset: BigInt(envelope.source.offset),
        leaderEpoch: 0,
        timestamp: acceptedAt,
        key: envelope.key === null ? undefined : Buffer.from(envelope.key),
        value: envelope.value === null ? undefined : Buffer.from(envelope.value),
      });
      if (!decoded.ok) return skip(letter, `still invalid: ${decoded.reason}`, output);
      pending.push({
        topic: config.KAFKA_TOPIC,
        key: decoded.event.id,
        value: envelope.value as string,
        timestamp: acceptedAt,
      });
      if (pending.length >= REPLAY_BATCH) await flush();
    },
  };
}
