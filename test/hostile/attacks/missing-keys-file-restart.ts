import { renameSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type Attack, AttackRequests, type Disruption, repeat, type Target } from "../attack.ts";
import { keylessStats, waitForKeysInForce } from "./keys-in-force.ts";

/**
 * With keys in force, the keys file is moved away and one API process is killed (SIGKILL, as the OOM killer or
 * a crash would), so pm2 starts it again without a keys file; keyless `GET /stats` probes every API process
 * four times a second on fresh connections. A process started without its keys must not serve anyone open.
 * The file is put back afterwards; pm2 must then have every API process running with keys in force.
 */
export const missingKeysFileRestart: Attack = {
  name: "missing keys file, restart",
  summary:
    "with keys in force, the keys file moved away and one API process SIGKILLed (pm2 restarts it); keyless GET /stats 4 times a second",
  async run(target, stop, settleMs) {
    const moved = `${target.keysFile}.moved`;
    const requests = new AttackRequests(target.queryUrl, target.attackerAddress);
    const problems: string[] = [];
    const disruptions: Disruption[] = [];
    renameSync(target.keysFile, moved);
    try {
      // The running processes see the file gone (and keep their keys) before one of them is replaced.
      await sleep(1500);
      const [victim] = target.apiPids();
      if (victim === undefined) throw new Error("no API process to kill");
      const killedAt = Date.now();
      process.kill(victim, "SIGKILL");
      // Until pm2 has reaped it: a connection its master accepted before then may go to the dead process.
      while (alive(victim)) await sleep(10);
      disruptions.push({ from: killedAt, to: Date.now(), what: `SIGKILLed API process ${victim}` });
      target.log(`SIGKILLed API process ${victim}, gone after ${Date.now() - killedAt} ms`);
      // Each probe on its own: one left hanging does not hold the next ones back.
      await repeat(stop, async () => void keylessStats(requests), 250);
      await requests.settle(settleMs);
    } finally {
      renameSync(moved, target.keysFile);
    }
    const running = await waitForApiProcesses(target, 20_000);
    if (running < target.apiInstances) {
      problems.push(
        `${running} of ${target.apiInstances} API processes running 20 s after the keys file was put back (pm2 gave up restarting?)`,
      );
    }
    const problem = await waitForKeysInForce(target, 15_000);
    if (problem) problems.push(problem);
    return { outcomes: requests.outcomes, problems, disruptions };
  },
};

/** Until pm2 runs every API process again (up to timeoutMs); how many run then. */
async function waitForApiProcesses(target: Target, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (target.apiPids().length < target.apiInstances && Date.now() < deadline) await sleep(250);
  return target.apiPids().length;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
