import { setTimeout as sleep } from "node:timers/promises";
import { AttackRequests, type Target } from "../attack.ts";
import type { Outcome } from "../outcomes.ts";

let probes = 0;

/**
 * What an attacker tries once keys may have lapsed, each on a connection of its own (pm2 hands connections to its
 * processes in turn): `GET /stats` on the query API, `GET /metrics` and a valid event on the ingest API, all
 * without a key. An event let in would also show in the counts afterwards, as stored but sent by no valid request.
 */
export function keylessProbes(ingest: AttackRequests, query: AttackRequests): Promise<Outcome>[] {
  const id = `attack-${Date.now().toString(36)}-${probes++}`;
  return [
    query.send({ method: "GET", path: "/stats?timeWindowMinutes=60" }),
    ingest.send({ method: "GET", path: "/metrics" }),
    ingest.send({
      method: "POST",
      path: "/event",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, ts: Date.now(), userId: "u-attacker", adId: "ad-0" }),
    }),
  ];
}

/**
 * Until the keys are in force on every API process: the query key opens `/stats`, and no key opens neither
 * `/stats` nor the ingest API's `/metrics`, on twice as many fresh connections in a row as there are processes.
 * Undefined when so, else what was seen last, after `timeoutMs`.
 */
export async function waitForKeysInForce(target: Target, timeoutMs: number): Promise<string | undefined> {
  const ingest = new AttackRequests(target.apiUrl);
  const query = new AttackRequests(target.queryUrl);
  const deadline = Date.now() + timeoutMs;
  let inARow = 0;
  let last = "";
  while (Date.now() < deadline) {
    const keyed = await query.send({
      method: "GET",
      path: "/stats?timeWindowMinutes=60",
      headers: { authorization: `Bearer ${target.queryKey}` },
    });
    const keyless = await query.send({ method: "GET", path: "/stats?timeWindowMinutes=60" });
    const metrics = await ingest.send({ method: "GET", path: "/metrics" });
    last = `/stats with the query key ${keyed}, without a key ${keyless}; /metrics without a key ${metrics}`;
    const inForce = keyed === "200" && keyless.startsWith("401") && metrics.startsWith("401");
    inARow = inForce ? inARow + 1 : 0;
    if (inARow >= 2 * (target.apiInstances + target.queryInstances)) return undefined;
    await sleep(100);
  }
  return `keys not back in force ${timeoutMs / 1000} s after the keys file was restored: ${last}`;
}
