import { type Attack, AttackRequests, repeat } from "../attack.ts";
import { is2xx, refused } from "../outcomes.ts";
import { LOAD_ADS } from "../valid-load.ts";

const CONCURRENT = 8;
/** The retention (30 days): the largest window a query may ask for. */
const WINDOW_MINUTES = 43_200;

/**
 * A tenant's query key (its dashboard gone wrong, or whoever took the key) asks eight at a time, again and again,
 * for the per-minute series of 20 of its ads over 30 days. Its queries may be answered: it is the ingestion they
 * must not stop.
 */
export const queryFlood: Attack = {
  name: "query flood",
  summary: `with a tenant's query key, ${CONCURRENT} concurrent GET /stats/timeseries?timeWindowMinutes=${WINDOW_MINUTES} with ${LOAD_ADS.length} adIds, repeated`,
  expected: (outcome) => is2xx(outcome) || refused(outcome),
  async run(target, stop, settleMs) {
    const requests = new AttackRequests(target.queryUrl, target.attackerAddress);
    const ads = LOAD_ADS.map((ad) => `adId=${ad}`).join("&");
    const query = () =>
      requests.send({
        method: "GET",
        path: `/stats/timeseries?timeWindowMinutes=${WINDOW_MINUTES}&${ads}`,
        headers: { authorization: `Bearer ${target.tenantQueryKey}` },
      });
    // Each sender asks again as soon as it has its answer (at most 10 times a second).
    await Promise.all(Array.from({ length: CONCURRENT }, () => repeat(stop, query, 100)));
    await requests.settle(settleMs);
    return { outcomes: requests.outcomes, problems: [] };
  },
};
