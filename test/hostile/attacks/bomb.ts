import { type Attack, AttackRequests, repeat } from "../attack.ts";

/** Concurrent bombs, each sender starting its next at most every 5 s. */
export const SENDERS = 4;
export const EVERY_MS = 5000;
/** Under BATCH_MAX_BYTES (10 MiB): the size limit alone does not stop them. */
export const BOMB_BYTES = 10_000_000;

export function bombAttack(name: string, summary: string, contentType: string, body: Buffer): Attack {
  return {
    name,
    summary,
    async run(target, stop, settleMs) {
      const requests = new AttackRequests(target.apiUrl, target.attackerAddress);
      const bomb = () =>
        requests.send({
          method: "POST",
          path: "/events",
          headers: {
            "content-type": contentType,
            "content-length": body.length,
            authorization: `Bearer ${target.ingestKey}`,
          },
          body,
        });
      await Promise.all(Array.from({ length: SENDERS }, () => repeat(stop, bomb, EVERY_MS)));
      await requests.settle(settleMs);
      return { outcomes: requests.outcomes, problems: [] };
    },
  };
}
