import { BOMB_BYTES, bombAttack, EVERY_MS, SENDERS } from "./bomb.ts";

/** 10 MB of `\n` as NDJSON: ten million empty lines, each an item to reject. */
export const newlineBomb = bombAttack(
  "newline bomb",
  `${SENDERS} concurrent POST /events of ${BOMB_BYTES / 1e6} MB of "\\n" as NDJSON, each sender again every ${EVERY_MS / 1000} s`,
  "application/x-ndjson",
  Buffer.alloc(BOMB_BYTES, "\n"),
);
