/** A source of uniform numbers in [0, 1): Math.random in the CLI, a seeded one in tests. */
export type Rng = () => number;

/** mulberry32: a small, fast, seeded PRNG (good enough for load, not for secrets). */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [0, n). */
export const randomInt = (rng: Rng, n: number): number => Math.floor(rng() * n);

const HEX = "0123456789abcdef";

/** A version-4 UUID from `rng` (reproducible with a seeded one). */
export function uuid(rng: Rng): string {
  let out = "";
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) out += "-";
    else if (i === 14) out += "4";
    else if (i === 19) out += HEX[8 + randomInt(rng, 4)];
    else out += HEX[randomInt(rng, 16)];
  }
  return out;
}

/**
 * Ranks 0..n-1 drawn with probability proportional to 1 / (rank + 1)^s: a few ads get most impressions,
 * as on a real ad server. Cumulative weights, then a binary search: O(log n) a draw.
 */
export function zipf(n: number, s = 1): (rng: Rng) => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** s;
    cumulative[k] = total;
  }
  return (rng) => {
    const target = rng() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cumulative[mid] ?? 0) > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}
