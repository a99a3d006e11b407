import type { FastifyPluginAsync, FastifySchema } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ChargeEvents } from "../http/access-hooks.ts";
import { encodeImpressionBytes } from "../impression/codec.ts";
import type { ViewerEvidence } from "../impression/fields.ts";
import { type Impression, type ImpressionLimits, impressionQuerySchema } from "../impression/schema.ts";
import type { TrafficClassifier } from "../traffic/classify.ts";
import { UNCLASSIFIED } from "../traffic/labels.ts";
import { CACHEBUSTER_NAMES, ignoreCachebusters } from "./cachebusters.ts";
import { DELIVERY_ERRORS, type Deliver } from "./deliver.ts";
import { requestFacts } from "./viewer.ts";

/** The smallest transparent 1x1 GIF (43 bytes). */
export const PIXEL_GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

/** A pixel must be fetched every time it renders: a cached one would be an impression not counted. */
export const NO_CACHE = {
  "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
  pragma: "no-cache",
  expires: "0",
};

/** A GET route's key parameters: its key and, for signed keys, expiry and the signature of `signed`. */
export function keyParams(signed: string) {
  return {
    key: z.string().optional().describe("an ingest key (or send it as a header)"),
    exp: z.string().optional().describe("signed keys only: when the URL expires, epoch seconds"),
    sig: z.string().optional().describe(`signed keys only: hex HMAC-SHA256 of ${signed}`),
  };
}

/** The pixel's own parameters besides the impression: its key and, for signed keys, expiry and signature. */
export const pixelAuthParams = keyParams('"<id>|<adId>|<userId>|<exp>", then "|<kind>" for another kind');

/** What the cachebusters' description says, for the routes that ignore them. */
export const CACHEBUSTERS_IGNORED =
  `Cachebusters are ignored: ${[...CACHEBUSTER_NAMES].join(", ")} whatever their value, and any other parameter ` +
  "holding a VAST [CACHEBUSTING] or [TIMESTAMP] macro, as it is or substituted (8 digits; an ISO 8601 time with " +
  "its offset), unless its name is another spelling of one of the route's own (docs/API.md).";

export interface PixelOptions {
  deliver: Deliver;
  limits: ImpressionLimits;
  chargeEvents: ChargeEvents;
  /** Labels the impression's traffic from the request's headers; undefined: unclassified. */
  traffic?: TrafficClassifier;
  /** Counts acknowledged events by traffic label; undefined when metrics are off. */
  countTraffic?: (label: string, events: number) => void;
}

/**
 * GET /pixel.gif?id=…&adId=…[&userId=…][&kind=…][&ts=…]: the event an `<img>` tag or a video player fires.
 * Answers the GIF only after Kafka's ack, like POST /event; without `ts` the event time is when the request
 * arrived.
 */
export const pixelRoute: FastifyPluginAsync<PixelOptions> = async (app, options) => {
  const { deliver, limits, chargeEvents, traffic, countTraffic } = options;
  const querystring = impressionQuerySchema(limits, pixelAuthParams);
  const schema = {
    tags: ["ingest"],
    summary: "The impression an <img> fires",
    description:
      "The event's fields as query parameters, `ts` as digits; without `ts` the event time is when the " +
      "request arrived, without `kind` it is an impression (VAST <Impression> and <Tracking> URLs: " +
      "`kind=start`, …); `webdriver=1` when the page's navigator.webdriver is. Any other parameter is an error, " +
      "but for cachebusters. Signed keys also need `exp` and `sig` (and no `ts`). The request's own headers " +
      `describe the viewer, for classifying the traffic (docs/STATS.md). ${CACHEBUSTERS_IGNORED}`,
    querystring,
    response: {
      200: {
        description:
          "a 1×1 transparent GIF, once Kafka has acknowledged the event; never cached (Cache-Control: no-store)",
        // The GIF's bytes, sent as they are (never serialized), documented as binary.
        content: { "image/gif": { schema: z.instanceof(Buffer).meta({ type: "string", format: "binary" }) } },
      },
    },
    errors: ["invalid_query", "rate_limited", ...DELIVERY_ERRORS],
  } satisfies FastifySchema;
  const preValidation = ignoreCachebusters(Object.keys(querystring.shape));
  app.withTypeProvider<ZodTypeProvider>().get("/pixel.gif", { schema, preValidation }, async (request, reply) => {
    const receivedAt = Date.now();
    const {
      key: _key,
      exp: _exp,
      sig: _sig,
      ...fields
    } = request.query as Partial<Impression> &
      ViewerEvidence &
      Record<keyof typeof pixelAuthParams, string | undefined>;
    const event = { ...fields, ts: fields.ts ?? receivedAt } as Impression & ViewerEvidence;
    chargeEvents(request, reply, 1);
    const stamp = traffic?.stamp(traffic.request(requestFacts(request, "pixel")), event, receivedAt);
    await deliver("/pixel.gif", [{ key: event.id, value: encodeImpressionBytes(event, receivedAt, stamp) }]);
    countTraffic?.(stamp?.traffic ?? UNCLASSIFIED, 1);
    return reply.code(200).headers(NO_CACHE).type("image/gif").send(PIXEL_GIF);
  });
};
