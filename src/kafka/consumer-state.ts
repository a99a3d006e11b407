import type { ConsumedMessage } from "./consumer.ts";

/** What a member holds for one partition of its topic; a join resets the record of a partition it takes away. */
export interface PartitionState {
  /** Assigned to this member by the latest join. */
  assigned: boolean;
  /** Bumped each time the partition is taken away: a batch taken before must neither commit nor put back. */
  losses: number;
  /** Received, not handed over yet, oldest first. */
  pending: ConsumedMessage[];
  /** When the oldest pending message arrived (meaningless while nothing is pending). */
  pendingSince: number;
  /** Next offset expected: lower ones are re-deliveries already pending or stored. */
  nextOffset: bigint | undefined;
  /** A deferred partition (busy claims) is not handed over before this. */
  deferredUntil: number;
}

/**
 * A join's effect on a partition's record (undefined if never held). A partition taken away drops what is
 * pending and counts a loss: its new owner, maybe this member again, replays it from the commit.
 */
export function joined(state: PartitionState | undefined, assigned: boolean): PartitionState {
  const before = state ?? {
    assigned: false,
    losses: 0,
    pending: [],
    pendingSince: 0,
    nextOffset: undefined,
    deferredUntil: 0,
  };
  if (assigned) return { ...before, assigned: true };
  if (!before.assigned) return before;
  return { ...before, assigned: false, losses: before.losses + 1, pending: [], nextOffset: undefined };
}

/** Whether the partition stayed this member's since a batch was taken from it with `lossesAtTake` losses. */
export function heldSince(
  state: PartitionState | undefined,
  lossesAtTake: number | undefined,
): state is PartitionState {
  return state?.assigned === true && state.losses === lossesAtTake;
}

/** What the consumer sees of one owned partition at a lag measurement. */
export interface PartitionWatch {
  partition: number;
  lag: bigint;
  committedOffset: bigint | undefined;
  /** Nothing pending and no batch of it in hand: nothing is under way that would commit. */
  idle: boolean;
}

/**
 * Partitions that look starved: lag, nothing pending or in hand, and the same committed offset as at the
 * previous measurement (`suspects`, updated in place). Messages the stream should deliver are not arriving.
 */
export function starvedPartitions(
  suspects: Map<number, bigint | undefined>,
  watched: readonly PartitionWatch[],
): number[] {
  const starved: number[] = [];
  const seen = new Set<number>();
  for (const { partition, lag, committedOffset, idle } of watched) {
    seen.add(partition);
    if (lag === 0n || !idle) {
      suspects.delete(partition);
      continue;
    }
    if (suspects.has(partition) && suspects.get(partition) === committedOffset) starved.push(partition);
    else suspects.set(partition, committedOffset);
  }
  for (const partition of suspects.keys()) if (!seen.has(partition)) suspects.delete(partition);
  return starved;
}
