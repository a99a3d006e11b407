import { readFileSync, writeFileSync } from "node:fs";
import { type Attack, AttackRequests, repeat } from "../attack.ts";
import { merge } from "../outcomes.ts";
import { keylessProbes, waitForKeysInForce } from "./keys-in-force.ts";

/** What lands in the keys file, in turn: a list with no key (the issue's), and a file truncated to nothing. */
const EMPTIED = [
  { what: "an empty key list", text: '{"version":1,"keys":[]}\n' },
  { what: "a 0-byte file", text: "" },
];
const EACH_MS = 4000;

/**
 * With keys in force, the keys file is emptied (by a bad deploy, a script, or someone with write access to it),
 * in two ways in turn every 4 s, while keyless requests probe it four times a second (keylessProbes).
 * Emptying the file must not open the API. The file is restored afterwards, and the keys must be in force again.
 */
export const emptiedKeysFile: Attack = {
  name: "emptied keys file",
  summary: `with keys in force, the keys file rewritten as ${EMPTIED.map((e) => e.what).join(", then as ")} (in turn every ${EACH_MS / 1000} s); keyless GET /stats, GET /metrics and POST /event 4 times a second`,
  async run(target, stop, settleMs) {
    const original = readFileSync(target.keysFile);
    const ingest = new AttackRequests(target.apiUrl, target.attackerAddress);
    const query = new AttackRequests(target.queryUrl, target.attackerAddress);
    // Each probe on its own: one left hanging does not hold the next ones back.
    const probe = async () => void keylessProbes(ingest, query);
    let turn = 0;
    const empty = async () => {
      const form = EMPTIED[turn++ % EMPTIED.length] as (typeof EMPTIED)[number];
      target.log(`keys file now ${form.what}`);
      writeFileSync(target.keysFile, form.text);
    };
    try {
      await Promise.all([repeat(stop, empty, EACH_MS), repeat(stop, probe, 250)]);
      await Promise.all([ingest.settle(settleMs), query.settle(settleMs)]);
    } finally {
      writeFileSync(target.keysFile, original);
    }
    const problem = await waitForKeysInForce(target, 15_000);
    return { outcomes: merge(ingest.outcomes, query.outcomes), problems: problem ? [problem] : [] };
  },
};
