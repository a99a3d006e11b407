/** One impression a chaos run sends; `ts` is 0 until its first send fixes it (a copy is the same event again). */
export interface ChaosEvent {
  id: string;
  ts: number;
  userId: string;
  adId: string;
}

/** Originals with ~duplicateRate copies: most a few seconds after theirs, some minutes later (at the end). */
export function planEvents(total: number, duplicateRate: number): ChaosEvent[] {
  const run = Date.now().toString(36);
  const events: ChaosEvent[] = [];
  const late: ChaosEvent[] = [];
  const originals = Math.round(total * (1 - duplicateRate));
  const copies = total - originals;
  const lateCopies = Math.floor(copies * 0.3);
  let copiesLeft = copies - lateCopies;
  for (let i = 0; i < originals; i++) {
    events.push({ id: `c-${run}-${i}`, ts: 0, userId: `u${i % 5000}`, adId: `ad${i % 50}` });
    if (copiesLeft > 0 && Math.random() < (copies - lateCopies) / originals) {
      // A copy within the last ~1,000 events: about a second or two earlier at the send rate.
      const recent = events[Math.max(0, events.length - 1 - Math.floor(Math.random() * 1000))];
      if (recent) events.push(recent);
      copiesLeft--;
    }
  }
  for (let i = 0; i < lateCopies + copiesLeft; i++) {
    const early = events[Math.floor(Math.random() * events.length * 0.2)];
    if (early) late.push(early);
  }
  return [...events, ...late];
}
