import { type Attack, AttackRequests, type RawRequest, repeat } from "../attack.ts";
import { merge } from "../outcomes.ts";

/** A pixel's valid fields, so that only the key can be what refuses it. */
const PIXEL = "id=hostile-pixel-1&adId=ad-0&userId=u-0";

/**
 * A query key in a URL lands in access logs and browser history, so the API refuses one in any form with
 * `400 key_in_url`, even when the same key is also in a header. Each form once a second, on fresh connections.
 */
function forms(queryKey: string, ingestKey: string): { form: string; request: RawRequest }[] {
  const header = { authorization: `Bearer ${queryKey}` };
  return [
    { form: "/stats?key=Q", request: { method: "GET", path: `/stats?timeWindowMinutes=60&key=${queryKey}` } },
    {
      form: "/stats?key=Q, Q in a header too",
      request: { method: "GET", path: `/stats?timeWindowMinutes=60&key=${queryKey}`, headers: header },
    },
    {
      form: "/metrics?key=Q&key=Q, Q in a header too",
      request: { method: "GET", path: `/metrics?key=${queryKey}&key=${queryKey}`, headers: header },
    },
    {
      form: "/stats?key=Q&key=Q",
      request: { method: "GET", path: `/stats?timeWindowMinutes=60&key=${queryKey}&key=${queryKey}` },
    },
    {
      form: "/stats?key=Q&key=Q, Q in a header too",
      request: { method: "GET", path: `/stats?timeWindowMinutes=60&key=${queryKey}&key=${queryKey}`, headers: header },
    },
    {
      form: "/stats?%6Bey=Q (the name percent-encoded), Q in a header too",
      request: { method: "GET", path: `/stats?timeWindowMinutes=60&%6Bey=${queryKey}`, headers: header },
    },
    {
      form: "/stats?key=I (an ingest key), Q in a header",
      request: { method: "GET", path: `/stats?timeWindowMinutes=60&key=${ingestKey}`, headers: header },
    },
    {
      form: "POST /event?key=Q",
      request: {
        method: "POST",
        path: `/event?key=${queryKey}`,
        headers: { "content-type": "application/json" },
        body: "{}",
      },
    },
    { form: "/pixel.gif?key=Q", request: { method: "GET", path: `/pixel.gif?${PIXEL}&key=${queryKey}` } },
  ];
}

export const keyInUrl: Attack = {
  name: "query key in URL",
  summary: `a query key Q in the URL, ${forms("Q", "I").length} forms (${forms("Q", "I")
    .map((f) => f.form)
    .join("; ")}), each once a second`,
  expected: (outcome) => outcome === "400 key_in_url",
  async run(target, stop, settleMs) {
    const problems = new Set<string>();
    // Ingest routes on the ingest API, the others where queries are served.
    const ingest = new AttackRequests(target.apiUrl, target.attackerAddress);
    const query = new AttackRequests(target.queryUrl, target.attackerAddress);
    // Every form at once, each on its own: one left hanging does not hold the others back.
    const probeAll = async () => {
      for (const { form, request } of forms(target.queryKey, target.ingestKey)) {
        const onIngest = request.path.startsWith("/event") || request.path.startsWith("/pixel");
        void (onIngest ? ingest : query).send(request).then((outcome) => {
          if (outcome !== "400 key_in_url") problems.add(`${form}: ${outcome}`);
        });
      }
    };
    await repeat(stop, probeAll, 1000);
    await Promise.all([ingest.settle(settleMs), query.settle(settleMs)]);
    const outcomes = merge(ingest.outcomes, query.outcomes);
    return { outcomes, problems: [...problems].map((p) => `want 400 key_in_url, got ${p}`) };
  },
};
