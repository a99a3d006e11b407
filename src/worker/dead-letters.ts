import { ProduceAcks, type Producer } from "@platformatic/kafka";
import type { Position } from "../dedup/claims.ts";
import type { PoisonCode } from "./decode.ts";

export interface PoisonMessage {
  position: Position;
  /** The message's Kafka timestamp (when the API accepted it), which its validity is judged against. */
  timestamp: bigint;
  code: PoisonCode;
  reason: string;
  key: string | undefined;
  value: string | undefined;
}

/**
 * Sends messages that cannot be stored to the dead-letter topic, as a JSON envelope naming the reason (its text and
 * code) and where the message came from (its position and Kafka timestamp: `npm run dlq` judges it again against
 * that), and the reason again as a header for tools that only read headers. With acks=all, like
 * the API's writes: the source offsets are committed after the send, so a dead letter must be on every in-sync
 * replica by then. (Set per send: a non-idempotent Producer's sends default to acks=1 whatever its own options.)
 */
export class DeadLetters {
  readonly #producer: Producer<string, string, string, string>;
  readonly #topic: string;

  constructor(producer: Producer<string, string, string, string>, topic: string) {
    this.#producer = producer;
    this.#topic = topic;
  }

  async send(poison: readonly PoisonMessage[]): Promise<void> {
    if (poison.length === 0) return;
    await this.#producer.send({
      acks: ProduceAcks.ALL,
      messages: poison.map((p) => ({
        topic: this.#topic,
        key: p.key,
        value: JSON.stringify({
          reason: p.reason,
          code: p.code,
          source: {
            topic: p.position.topic,
            partition: p.position.partition,
            offset: String(p.position.offset),
            timestamp: String(p.timestamp),
          },
          key: p.key ?? null,
          value: p.value ?? null,
        }),
        headers: { "x-dlq-reason": p.reason.slice(0, 1000) },
      })),
    });
  }
}
