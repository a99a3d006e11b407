import { dedupKey, type Impression } from "../impression/fields.ts";

/**
 * Keeps the first item of each (kind, id), in order: later copies in the same batch are duplicates. An
 * impression and its `viewable` share an id and are both kept.
 */
export function firstSightings<T extends { event: Pick<Impression, "id" | "kind"> }>(
  items: readonly T[],
): { kept: T[]; dropped: number } {
  const seen = new Set<string>();
  const kept: T[] = [];
  for (const item of items) {
    const key = dedupKey(item.event);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(item);
  }
  return { kept, dropped: items.length - kept.length };
}
