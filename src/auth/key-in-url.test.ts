import { describe, expect, it } from "vitest";
import { MIN_URL_WITH_KEY, urlHoldsQueryKey } from "./key-in-url.ts";
import { newSecret } from "./keys-file.ts";

const key = newSecret("query");
const encodeAll = (text: string) => [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");

describe("urlHoldsQueryKey", () => {
  it("finds a query key under any parameter name, repeated, or in the path", () => {
    for (const url of [
      `/stats?timeWindowMinutes=5&key=${key}`,
      `/metrics?key=${key}&key=${key}`,
      `/healthz?api_key=${key}`,
      `/pixel.gif?id=1&token=${key}`,
      `/stats?${key}`,
      `/stats/${key}`,
      `/?x=Bearer%20${key}`,
    ]) {
      expect(urlHoldsQueryKey(url), url).toBe(true);
    }
  });

  it("finds it in any letter case and percent-encoded, even several times over or next to a broken escape", () => {
    const rest = key.slice("imp_qry_".length);
    for (const url of [
      `/stats?KEY=${key.toUpperCase()}`,
      `/stats?key=IMP_QRY_${rest}`,
      `/stats?key=${encodeAll(key)}`,
      `/stats?key=%69mp%5Fqry%5f${rest}`,
      `/stats?key=%2569mp%255Fqry%255F${rest}`,
      `/stats?key=${encodeURIComponent(encodeURIComponent(encodeAll(key)))}`,
      `/stats?bad=%zz%&key=%69mp_qry_${rest}`,
    ]) {
      expect(urlHoldsQueryKey(url), url).toBe(true);
    }
  });

  it("lets every other URL through: ingest keys, ids and parameters that merely look alike", () => {
    for (const url of [
      "/event",
      `/pixel.gif?id=imp-1&adId=ad-7&userId=u-42&key=${newSecret("ingest")}`,
      "/stats?timeWindowMinutes=60&adId=imp_qry&limit=10",
      "/stats?adId=imp-qry-1",
      "/pixel.gif?id=%zz",
      "/healthz",
    ]) {
      expect(urlHoldsQueryKey(url), url).toBe(false);
    }
  });

  it("needs no look at a URL shorter than the prefix, such as /event and /events", () => {
    expect(MIN_URL_WITH_KEY).toBeGreaterThan("/events".length);
  });
});
