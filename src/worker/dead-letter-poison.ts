import type { Logger } from "pino";
import type { Position } from "../dedup/claims.ts";
import type { DeadLetters, PoisonMessage } from "./dead-letters.ts";

/** Logs each poison message and sends them all to the dead-letter topic, so their offsets can be committed. */
export async function deadLetterPoison(
  poison: readonly PoisonMessage[],
  deadLetters: Pick<DeadLetters, "send">,
  logger: Pick<Logger, "warn">,
): Promise<void> {
  for (const p of poison)
    logger.warn({ position: positionLog(p.position), reason: p.reason }, "poison message to the DLQ");
  await deadLetters.send(poison);
}

function positionLog(p: Position) {
  return { topic: p.topic, partition: p.partition, offset: String(p.offset) };
}
