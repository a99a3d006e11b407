import { AppError } from "../errors.ts";
import { IMPRESSION_FIELDS } from "../impression/fields.ts";

/**
 * What one item of a batch (an array element, or an NDJSON line) may hold. An impression is one flat object of
 * 4 fields, about 100 bytes: these bounds are far above any honest item, valid or not, and keep what
 * JSON.parse builds for a whole batch small (docs/DESIGN.md, "Budgets"). Measured on this machine, 10,000
 * items of 16 fields with names of their own took JSON.parse 2.3 s; of 16 nested arrays each, 39 ms.
 */
export const ITEM_MAX_VALUES = 64;
export const ITEM_MAX_NESTED = 4;
/** Values over a whole batch, per item it may hold: an impression has 7 (4 colons, 3 commas between its fields). */
export const BATCH_VALUES_PER_ITEM = 16;
const EVENT_VALUES = 2 * IMPRESSION_FIELDS.length - 1;
/** Distinct field names outside the impression's, over a whole batch: each new name costs V8 hidden classes. */
export const BATCH_MAX_UNKNOWN_FIELDS = 64;

export interface ScanLimits {
  /** Items one batch may hold (BATCH_MAX_EVENTS). */
  maxItems: number;
  /** Bytes one item may span, the whitespace around it included. */
  maxItemBytes: number;
}

// Byte classes outside strings.
const SCALAR = 0;
const SPACE = 1;
const QUOTE = 2;
const COMMA = 3;
const COLON = 4;
const OPEN = 5;
const CLOSE = 6;
const NEWLINE = 7;
const CLASS = new Uint8Array(256);
for (const [byte, kind] of [
  [0x20, SPACE],
  [0x09, SPACE],
  [0x0d, SPACE],
  [0x0a, NEWLINE],
  [0x22, QUOTE],
  [0x2c, COMMA],
  [0x3a, COLON],
  [0x5b, OPEN],
  [0x7b, OPEN],
  [0x5d, CLOSE],
  [0x7d, CLOSE],
] as const) {
  CLASS[byte] = kind;
}
const QUOTE_BYTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE_BYTE = 0x0a;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
/** Bytes that end a run of string content: its closing quote, an escape, and for NDJSON the end of the line. */
const STRING_STOPS_JSON = new Uint8Array(256);
STRING_STOPS_JSON[QUOTE_BYTE] = 1;
STRING_STOPS_JSON[BACKSLASH] = 1;
const STRING_STOPS_NDJSON = STRING_STOPS_JSON.slice();
STRING_STOPS_NDJSON[NEWLINE_BYTE] = 1;
/** First bytes of a JSON value other than an array: a body that starts so is JSON, but not a batch. */
const VALUE_STARTS = new Set([...'{"-0123456789tfn'].map((c) => c.charCodeAt(0)));

const FIELD_LIST = IMPRESSION_FIELDS.map((field) => field.name).join(", ");
/** The impression's field names as bytes, by length: a key of another length is unknown at once. */
const FIELDS_BY_LENGTH: (Buffer[] | undefined)[] = [];
for (const { name } of IMPRESSION_FIELDS) {
  FIELDS_BY_LENGTH[name.length] = [...(FIELDS_BY_LENGTH[name.length] ?? []), Buffer.from(name, "latin1")];
}

/** Whether bytes[start, end) spell one of the impression's field names; compared in place, nothing allocated. */
function isFieldName(bytes: Buffer, start: number, end: number): boolean {
  const names = FIELDS_BY_LENGTH[end - start];
  if (names === undefined) return false;
  for (let n = 0; n < names.length; n++) {
    const name = names[n] as Buffer;
    let i = 0;
    while (i < name.length && bytes[start + i] === name[i]) i++;
    if (i === name.length) return true;
  }
  return false;
}

/**
 * Counts and measures the items of a POST /events body as its bytes arrive, before anything is built from it:
 * a body that breaks a limit is refused (AppError) at the chunk that breaks it, so a 10 MB newline or `[0,0,…]`
 * bomb costs the few kilobytes scanned up to its 10,001st item. One pass over each byte, no allocation per item;
 * strings (with their escapes), nesting and whitespace are followed, so a `,`, `]` or newline inside a string is
 * never taken for a separator. The JSON itself is judged later by JSON.parse: the scan only refuses what breaks a
 * limit, and a malformed body it lets through is answered `malformed_json` as before.
 */
export class BatchScan {
  readonly #ndjson: boolean;
  readonly #stops: Uint8Array;
  readonly #maxItems: number;
  readonly #maxItemBytes: number;
  /** JSON: 0 before the array's `[`, 1 inside it, 2 after its `]`. NDJSON is always 1. */
  #frame: number;
  /** Whitespace bytes before and after a JSON array. */
  #outside = 0;
  /** Items ended so far: array elements followed by `,` or `]`, NDJSON lines followed by a newline. */
  #items = 0;
  /** Bytes of the current item in earlier chunks. */
  #itemBytes = 0;
  #itemHasContent = false;
  /** `,` and `:` inside the current item: its values, roughly. */
  #values = 0;
  /** Values of the items ended so far. */
  #batchValues = 0;
  readonly #maxBatchValues: number;
  /** Arrays and objects inside the current item (the item itself not counted). */
  #nested = 0;
  /** Open arrays and objects of the current item; bit `depth` of #objects is set where an object is open. */
  #depth = 0;
  #objects = 0;
  #inString = false;
  #escaped = false;
  #expectKey = false;
  #inKey = false;
  /** The current key's bytes from earlier chunks (a key split by a chunk boundary). */
  #keyHead: Buffer | undefined;
  #unknownFields: Set<string> | undefined;

  constructor(format: "json" | "ndjson", limits: ScanLimits) {
    this.#ndjson = format === "ndjson";
    this.#stops = this.#ndjson ? STRING_STOPS_NDJSON : STRING_STOPS_JSON;
    this.#frame = this.#ndjson ? 1 : 0;
    this.#maxItems = limits.maxItems;
    this.#maxItemBytes = limits.maxItemBytes;
    this.#maxBatchValues = limits.maxItems * BATCH_VALUES_PER_ITEM;
  }

  /** Items ended so far (a last item not followed by a separator is not counted). */
  get items(): number {
    return this.#items;
  }

  /** Scans the next chunk of the body; throws once the body breaks a limit. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    const stops = this.#stops;
    const ndjson = this.#ndjson;
    // The state lives in locals while the chunk is scanned (the loop runs for every byte), then goes back.
    let depth = this.#depth;
    let objects = this.#objects;
    let values = this.#values;
    let nested = this.#nested;
    let hasContent = this.#itemHasContent;
    let inString = this.#inString;
    let escaped = this.#escaped;
    let expectKey = this.#expectKey;
    let inKey = this.#inKey;
    let i = 0;
    /** Where the current item's bytes start in this chunk. */
    let itemStart = 0;
    let keyStart = 0;
    if (this.#frame !== 1) {
      i = this.#scanOutside(chunk, 0);
      itemStart = i;
    }
    while (i < n) {
      if (inString) {
        if (escaped) {
          // The byte after a backslash that ended the last chunk (an NDJSON newline still ends the line).
          escaped = false;
          if (!ndjson || chunk[i] !== NEWLINE_BYTE) i++;
          continue;
        }
        while (i < n && stops[chunk[i] as number] === 0) i++;
        if (i === n) break;
        const stop = chunk[i];
        if (stop === BACKSLASH) {
          if (++i === n) {
            escaped = true;
            break;
          }
          // NDJSON: a newline ends the line even after a backslash (the line is malformed then).
          if (!ndjson || chunk[i] !== NEWLINE_BYTE) i++;
          continue;
        }
        if (stop === QUOTE_BYTE) {
          inString = false;
          if (inKey) {
            inKey = false;
            // The usual key, one of the impression's, is recognised here without a call.
            const names = this.#keyHead === undefined ? FIELDS_BY_LENGTH[i - keyStart] : undefined;
            let known = false;
            for (let f = 0; names !== undefined && f < names.length && !known; f++) {
              const name = names[f] as Buffer;
              let b = 0;
              while (b < name.length && chunk[keyStart + b] === name[b]) b++;
              known = b === name.length;
            }
            if (!known) this.#checkKey(chunk, keyStart, i);
          }
          i++;
          continue;
        }
        // An NDJSON newline inside a string: the line ends here, below.
        inString = false;
        inKey = false;
      }
      const byte = chunk[i++] as number;
      switch (CLASS[byte]) {
        case SPACE:
          break;
        case SCALAR:
          hasContent = true;
          while (i < n && CLASS[chunk[i] as number] === SCALAR) i++;
          break;
        case QUOTE:
          hasContent = true;
          inString = true;
          if (expectKey) {
            inKey = true;
            expectKey = false;
            keyStart = i;
          }
          break;
        case COLON:
          hasContent = true;
          if (depth > 0 && ++values > ITEM_MAX_VALUES) this.#refuseItem(`holds more than ${ITEM_MAX_VALUES} values`);
          break;
        case COMMA:
          if (depth > 0) {
            if (++values > ITEM_MAX_VALUES) this.#refuseItem(`holds more than ${ITEM_MAX_VALUES} values`);
            expectKey = ((objects >> depth) & 1) === 1;
          } else if (ndjson) {
            hasContent = true;
          } else {
            this.#countItem(this.#itemBytes + (i - 1 - itemStart), values);
            itemStart = i;
            hasContent = false;
            values = 0;
            nested = 0;
          }
          break;
        case OPEN:
          hasContent = true;
          if (depth > 0 && ++nested > ITEM_MAX_NESTED) {
            this.#refuseItem(`nests more than ${ITEM_MAX_NESTED} arrays or objects`);
          }
          depth++;
          expectKey = byte === OPEN_BRACE;
          objects = expectKey ? objects | (1 << depth) : objects & ~(1 << depth);
          break;
        case CLOSE:
          expectKey = false;
          if (depth > 0) {
            depth--;
          } else if (ndjson) {
            hasContent = true;
          } else {
            // The array's closing bracket: its last item ends here (`[]` and `[ ]` have none).
            if (hasContent || this.#items > 0) this.#countItem(this.#itemBytes + (i - 1 - itemStart), values);
            this.#frame = 2;
            i = this.#scanOutside(chunk, i);
            itemStart = i;
          }
          break;
        case NEWLINE:
          if (ndjson) {
            this.#countItem(this.#itemBytes + (i - 1 - itemStart), values);
            itemStart = i;
            hasContent = false;
            values = 0;
            nested = 0;
            depth = 0;
            inString = false;
            escaped = false;
            expectKey = false;
            inKey = false;
          }
          break;
      }
    }
    this.#depth = depth;
    this.#objects = objects;
    this.#values = values;
    this.#nested = nested;
    this.#itemHasContent = hasContent;
    this.#inString = inString;
    this.#escaped = escaped;
    this.#expectKey = expectKey;
    this.#inKey = inKey;
    if (this.#frame === 1) {
      this.#itemBytes += n - itemStart;
      if (this.#itemBytes > this.#maxItemBytes) this.#refuseItem(`is larger than ${this.#maxItemBytes} bytes`);
      if (inKey) {
        const rest = chunk.subarray(keyStart, n);
        this.#keyHead = this.#keyHead ? Buffer.concat([this.#keyHead, rest]) : Buffer.from(rest);
      }
    }
  }

  /** JSON before the array's `[` or after its `]`: only whitespace, and not much of it. Returns where it stopped. */
  #scanOutside(chunk: Buffer, from: number): number {
    let i = from;
    while (i < chunk.length && (CLASS[chunk[i] as number] === SPACE || chunk[i] === NEWLINE_BYTE)) i++;
    this.#outside += i - from;
    if (this.#outside > this.#maxItemBytes) {
      throw new AppError("invalid_batch", `the body has more than ${this.#maxItemBytes} bytes of whitespace`);
    }
    if (i === chunk.length) return i;
    const byte = chunk[i] as number;
    if (this.#frame === 2) {
      throw new AppError("malformed_json", "the body is not valid JSON: there is more after the array's closing ]");
    }
    if (byte === OPEN_BRACKET) {
      this.#frame = 1;
      return i + 1;
    }
    if (VALUE_STARTS.has(byte)) {
      throw new AppError(
        "invalid_batch",
        "send a JSON array of events, or NDJSON (one event per line) with Content-Type: application/x-ndjson",
      );
    }
    throw new AppError("malformed_json", "the body is not valid JSON: it does not start with [");
  }

  /** An item ended at a separator, `bytes` long and holding `values`: count it (the caller starts the next one). */
  #countItem(bytes: number, values: number): void {
    if (bytes > this.#maxItemBytes) this.#refuseItem(`is larger than ${this.#maxItemBytes} bytes`);
    if (++this.#items > this.#maxItems) {
      throw new AppError(
        "too_many_events",
        `a batch holds at most ${this.#maxItems} events, this one has more; split it`,
      );
    }
    this.#batchValues += values;
    if (this.#batchValues > this.#maxBatchValues) {
      throw new AppError(
        "event_too_large",
        `the batch's items hold more than ${this.#maxBatchValues} values together (${BATCH_VALUES_PER_ITEM} per event at most); one event has ${EVENT_VALUES}`,
      );
    }
    this.#itemBytes = 0;
  }

  /** A key ended at `end`: one of the impression's field names, or a new unknown one to count. */
  #checkKey(chunk: Buffer, start: number, end: number): void {
    let key: Buffer | undefined;
    if (this.#keyHead) {
      key = Buffer.concat([this.#keyHead, chunk.subarray(start, end)]);
      this.#keyHead = undefined;
      if (isFieldName(key, 0, key.length)) return;
    } else if (isFieldName(chunk, start, end)) {
      return;
    }
    const text = (key ?? chunk).toString("latin1", key ? 0 : start, key ? key.length : end);
    this.#unknownFields ??= new Set();
    const unknown = this.#unknownFields;
    if (unknown.has(text)) return;
    if (unknown.size >= BATCH_MAX_UNKNOWN_FIELDS) {
      throw new AppError(
        "event_too_large",
        `the batch names more than ${BATCH_MAX_UNKNOWN_FIELDS} distinct unknown fields; an event has only ${FIELD_LIST}`,
      );
    }
    unknown.add(text);
  }

  #refuseItem(what: string): never {
    throw new AppError(
      "event_too_large",
      `item ${this.#items} ${what}; one event is 4 fields and about 100 bytes (each item at most ${this.#maxItemBytes} bytes, ${ITEM_MAX_VALUES} values, ${ITEM_MAX_NESTED} nested arrays or objects)`,
    );
  }
}
