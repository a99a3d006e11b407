import { BOMB_BYTES, bombAttack, EVERY_MS, SENDERS } from "./bomb.ts";

/** A 10 MB JSON array of empty objects: over three million items to parse, hold and reject. */
export const jsonArrayBomb = bombAttack(
  "JSON array bomb",
  `${SENDERS} concurrent POST /events of a ${BOMB_BYTES / 1e6} MB JSON array of {} items, each sender again every ${EVERY_MS / 1000} s`,
  "application/json",
  Buffer.from(`[${"{},".repeat(Math.floor((BOMB_BYTES - 4) / 3))}{}]`),
);
