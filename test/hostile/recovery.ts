import { setTimeout as sleep } from "node:timers/promises";
import { AttackRequests, type Target } from "./attack.ts";
import { PROMPT_MS, steady, type ValidLoad } from "./valid-load.ts";

/**
 * Until ingestion works again on every API process: pm2 runs them all, and on twice as many fresh connections
 * in a row as there are processes, `/healthz` answers 200 and an empty `POST /events` gets through admission to
 * its `400 empty_batch` (nothing is stored). Undefined once so; else what was seen last, after `timeoutMs`.
 */
export async function waitForIngest(target: Target, timeoutMs: number): Promise<string | undefined> {
  const probes = new AttackRequests(target.apiUrl);
  const deadline = Date.now() + timeoutMs;
  let inARow = 0;
  let last = "";
  while (Date.now() < deadline) {
    const running = target.apiPids().length;
    const health = await probes.send({ method: "GET", path: "/healthz" });
    const batch = await probes.send({
      method: "POST",
      path: "/events",
      headers: { "content-type": "application/json", authorization: `Bearer ${target.ingestKey}` },
      body: "[]",
    });
    last = `${running} of ${target.apiInstances} API processes, /healthz ${health}, an empty POST /events ${batch}`;
    const ok = running === target.apiInstances && health === "200" && batch === "400 empty_batch";
    inARow = ok ? inARow + 1 : 0;
    if (inARow >= 2 * target.apiInstances) return undefined;
    await sleep(ok ? 50 : 250);
  }
  return `ingestion not back ${timeoutMs / 1000} s after the attack: ${last}`;
}

/**
 * Until the valid load is steady again: three seconds in a row whose every request was answered 2xx within
 * PROMPT_MS (an attack's aftermath, a process still digesting a bomb, would spoil the next baseline). Undefined
 * once so; else how the last second went, after `timeoutMs`.
 */
export async function waitForSteadyLoad(load: ValidLoad, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (!steady(load.pulses(), 3)) {
    if (Date.now() > deadline) {
      const last = load.pulses().at(-1);
      return `the valid load not steady ${timeoutMs / 1000} s after the attack: of the last second's ${last?.sent ?? 0} requests, ${last?.prompt ?? 0} answered 2xx within ${PROMPT_MS} ms`;
    }
    await sleep(250);
  }
  return undefined;
}
