import { setTimeout as sleep } from "node:timers/promises";
import { AttackRequests, type Target } from "../attack.ts";

/** A keyless `GET /stats` on a connection of its own (pm2 hands connections to its processes in turn). */
export const keylessStats = (requests: AttackRequests) =>
  requests.send({ method: "GET", path: "/stats?timeWindowMinutes=60" });

/**
 * Until the query key opens `/stats` and no key does not, on twice as many fresh connections in a row as there
 * are API processes (so each process answered); undefined when so, else what was seen last, after `timeoutMs`.
 */
export async function waitForKeysInForce(target: Target, timeoutMs: number): Promise<string | undefined> {
  const checks = new AttackRequests(target.queryUrl);
  const deadline = Date.now() + timeoutMs;
  let inARow = 0;
  let last = "";
  while (Date.now() < deadline) {
    const keyed = await checks.send({
      method: "GET",
      path: "/stats?timeWindowMinutes=60",
      headers: { authorization: `Bearer ${target.queryKey}` },
    });
    const keyless = await keylessStats(checks);
    last = `with the query key ${keyed}, without a key ${keyless}`;
    inARow = keyed === "200" && keyless.startsWith("401") ? inARow + 1 : 0;
    if (inARow >= 2 * target.apiInstances) return undefined;
    await sleep(100);
  }
  return `keys not back in force ${timeoutMs / 1000} s after the keys file was restored: ${last}`;
}
