import { type Attack, AttackRequests, repeat } from "../attack.ts";

const CONNECTIONS = 40;
const DECLARED_BYTES = 8 * 1024 * 1024;

/**
 * 40 connections, each a `POST /events` that declares an 8 MiB body, sends `[` and then nothing. When the
 * server ends one (an answer or a cut), that connection starts another, at most once a second: the attacker
 * keeps 40 open for as long as it can.
 */
export const slowBodies: Attack = {
  name: "slow bodies",
  summary: `${CONNECTIONS} connections each start a POST /events with Content-Length: ${DECLARED_BYTES}, send "[", then nothing`,
  async run(target, stop, settleMs) {
    const requests = new AttackRequests(target.apiUrl, target.attackerAddress);
    const open = () =>
      requests.send({
        method: "POST",
        path: "/events",
        headers: {
          "content-type": "application/json",
          "content-length": DECLARED_BYTES,
          authorization: `Bearer ${target.ingestKey}`,
        },
        body: "[",
        holdOpen: true,
      });
    await Promise.all(Array.from({ length: CONNECTIONS }, () => repeat(stop, open, 1000)));
    await requests.settle(settleMs);
    return { outcomes: requests.outcomes, problems: [] };
  },
};
