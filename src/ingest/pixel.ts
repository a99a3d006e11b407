import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ChargeEvents } from "../api/auth.ts";
import { encodeImpression } from "../impression/codec.ts";
import { type Impression, type ImpressionLimits, impressionQuerySchema } from "../impression/schema.ts";
import type { Deliver } from "./deliver.ts";

/** The smallest transparent 1x1 GIF (43 bytes). */
export const PIXEL_GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

/** A pixel must be fetched every time it renders: a cached one would be an impression not counted. */
const NO_CACHE = {
  "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
  pragma: "no-cache",
  expires: "0",
};

/** The pixel's own parameters besides the impression: its key and, for signed keys, expiry and signature. */
export const pixelAuthParams = {
  key: z.string().optional(),
  exp: z.string().optional(),
  sig: z.string().optional(),
};

export interface PixelOptions {
  deliver: Deliver;
  limits: ImpressionLimits;
  chargeEvents: ChargeEvents;
}

/**
 * GET /pixel.gif?id=…&adId=…&userId=…[&ts=…]: the impression an `<img>` tag fires. Answers the GIF only
 * after Kafka's ack, like POST /event; without `ts` the event time is when the request arrived.
 */
export const pixelRoute: FastifyPluginAsync<PixelOptions> = async (app, { deliver, limits, chargeEvents }) => {
  const querystring = impressionQuerySchema(limits, pixelAuthParams);
  app.withTypeProvider<ZodTypeProvider>().get("/pixel.gif", { schema: { querystring } }, async (request, reply) => {
    const receivedAt = Date.now();
    const {
      key: _key,
      exp: _exp,
      sig: _sig,
      ...fields
    } = request.query as Partial<Impression> & Record<keyof typeof pixelAuthParams, string | undefined>;
    const event = { ...fields, ts: fields.ts ?? receivedAt } as Impression;
    chargeEvents(request, reply, 1);
    await deliver("/pixel.gif", [{ key: event.id, value: encodeImpression(event) }]);
    return reply.code(200).headers(NO_CACHE).type("image/gif").send(PIXEL_GIF);
  });
};
