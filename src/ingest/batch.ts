import type { z } from "zod";
import { encodeImpressionBytes } from "../impression/codec.ts";
import type { Stamp } from "../impression/fields.ts";
import type { SentImpression } from "../impression/schema.ts";
import type { KeyedRecord } from "../kafka/producer.ts";

/** An NDJSON line that is not JSON: rejected on its own, the other lines still count. */
export class MalformedLine {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** The parsed body of an application/x-ndjson request: one item per line. */
export class NdjsonBody {
  readonly items: unknown[];
  constructor(items: unknown[]) {
    this.items = items;
  }
}

/** Splits NDJSON into items; a final newline is optional, any other empty line is a rejected item. */
export function parseNdjson(text: string): NdjsonBody {
  const lines = text.split("\n");
  if (lines.at(-1)?.trim() === "") lines.pop();
  const items = lines.map((line): unknown => {
    if (line.trim() === "") return new MalformedLine("empty line: send one JSON event per line");
    try {
      return JSON.parse(line);
    } catch (error) {
      return new MalformedLine(`malformed JSON: ${(error as Error).message}`);
    }
  });
  return new NdjsonBody(items);
}

export interface ValidatedBatch {
  records: KeyedRecord[];
  /** The accepted events' traffic labels, as many as records (undefined: unclassified). */
  labels: (string | undefined)[];
  rejected: { index: number; error: string }[];
  /** How many of the rejected items were lines that are not JSON (the others failed the schema). */
  malformed: number;
}

/** How a batch's items are judged: the impression schema, and its allocation-free fast path for valid items. */
export interface BatchValidation {
  schema: z.ZodType<SentImpression>;
  /** True for an item the schema accepts as it is, false to let the schema judge it (impressionCheck). */
  check: (item: unknown) => item is SentImpression;
}

/**
 * Validates each item on its own: valid ones become Kafka records keyed by id, stamped by `stampOf` (their
 * traffic label), the others say why not. An item without `ts` gets `receivedAt`, when the API received the batch.
 */
export function validateBatch(
  items: readonly unknown[],
  { schema, check }: BatchValidation,
  receivedAt: number,
  stampOf: (event: SentImpression) => Stamp | undefined,
): ValidatedBatch {
  const records: KeyedRecord[] = [];
  const labels: (string | undefined)[] = [];
  const rejected: ValidatedBatch["rejected"] = [];
  let malformed = 0;
  const accept = (event: SentImpression) => {
    const stamp = stampOf(event);
    records.push({ key: event.id, value: encodeImpressionBytes(event, receivedAt, stamp) });
    labels.push(stamp?.traffic);
  };
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    if (item instanceof MalformedLine) {
      rejected.push({ index, error: item.message });
      malformed++;
      continue;
    }
    if (check(item)) {
      accept(item);
      continue;
    }
    const result = schema.safeParse(item);
    if (result.success) accept(result.data);
    else rejected.push({ index, error: result.error.issues.map((issue) => issue.message).join("; ") });
  }
  return { records, labels, rejected, malformed };
}
