import { waitFor } from "../support/wait.ts";

/**
 * Until `GET /stats` over the last hour adds up to at least `expected` impressions, as a user of the API would
 * see it; resolves with when (epoch ms) it first did.
 */
export async function waitForFullCount(apiUrl: string, expected: number, timeoutMs: number): Promise<number> {
  const counted = async () => {
    const response = await fetch(`${apiUrl}/stats?timeWindowMinutes=60`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return 0;
    const perAd = (await response.json()) as Record<string, number>;
    return Object.values(perAd).reduce((sum, n) => sum + n, 0);
  };
  return waitFor(
    `GET /stats to count ${expected} impressions`,
    timeoutMs,
    () =>
      counted().then(
        (n) => (n >= expected ? Date.now() : undefined),
        () => undefined,
      ),
    200,
  );
}
