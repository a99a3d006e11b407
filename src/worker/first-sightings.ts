/** Keeps the first item of each id, in order: later copies in the same batch are duplicates. */
export function firstSightings<T extends { event: { id: string } }>(
  items: readonly T[],
): { kept: T[]; dropped: number } {
  const seen = new Set<string>();
  const kept: T[] = [];
  for (const item of items) {
    if (seen.has(item.event.id)) continue;
    seen.add(item.event.id);
    kept.push(item);
  }
  return { kept, dropped: items.length - kept.length };
}
