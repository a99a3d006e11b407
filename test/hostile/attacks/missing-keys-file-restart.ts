import { renameSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { processIsAlive } from "../../../src/dedup/lease-holder.ts";
import { type Attack, AttackRequests, type Disruption, repeat, type Target } from "../attack.ts";
import { merge } from "../outcomes.ts";
import { keylessProbes, waitForKeysInForce } from "./keys-in-force.ts";

/**
 * With keys in force, the keys file is moved away and one ingest API process and the query API process are killed
 * (SIGKILL, as the OOM killer or a crash would), so pm2 starts them again without a keys file; keyless requests
 * probe both APIs four times a second (keylessProbes). A process started without its keys must not serve anyone
 * open. The file is put back afterwards; pm2 must then run every API process again, with keys in force.
 */
export const missingKeysFileRestart: Attack = {
  name: "missing keys file, restart",
  summary:
    "with keys in force, the keys file moved away, one ingest API process and the query API process SIGKILLed (pm2 restarts them); keyless GET /stats, GET /metrics and POST /event 4 times a second",
  async run(target, stop, settleMs) {
    const moved = `${target.keysFile}.moved`;
    const ingest = new AttackRequests(target.apiUrl, target.attackerAddress);
    const query = new AttackRequests(target.queryUrl, target.attackerAddress);
    const problems: string[] = [];
    const disruptions: Disruption[] = [];
    renameSync(target.keysFile, moved);
    try {
      // The running processes see the file gone (and keep their keys) before some of them are replaced.
      await sleep(1500);
      const [victim] = target.apiPids();
      if (victim === undefined) throw new Error("no ingest API process to kill");
      for (const pid of [victim, ...target.queryPids()]) {
        const killedAt = Date.now();
        process.kill(pid, "SIGKILL");
        // Until pm2 has reaped it: a connection its master accepted before then may go to the dead process.
        while (processIsAlive(pid)) await sleep(10);
        disruptions.push({ from: killedAt, to: Date.now(), what: `SIGKILLed API process ${pid}` });
        target.log(`SIGKILLed API process ${pid}, gone after ${Date.now() - killedAt} ms`);
      }
      // Each probe on its own: one left hanging does not hold the next ones back.
      await repeat(stop, async () => void keylessProbes(ingest, query), 250);
      await Promise.all([ingest.settle(settleMs), query.settle(settleMs)]);
    } finally {
      renameSync(moved, target.keysFile);
    }
    const running = await waitForApiProcesses(target, 20_000);
    if (running) problems.push(`${running} 20 s after the keys file was put back (pm2 gave up restarting?)`);
    const problem = await waitForKeysInForce(target, 15_000);
    if (problem) problems.push(problem);
    return { outcomes: merge(ingest.outcomes, query.outcomes), problems, disruptions };
  },
};

/** Until pm2 runs every API process again (up to timeoutMs): undefined, else how many run. */
async function waitForApiProcesses(target: Target, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  const all = () =>
    target.apiPids().length === target.apiInstances && target.queryPids().length === target.queryInstances;
  while (!all() && Date.now() < deadline) await sleep(250);
  if (all()) return undefined;
  return `${target.apiPids().length} of ${target.apiInstances} ingest and ${target.queryPids().length} of ${target.queryInstances} query API processes running`;
}
