import { gzipSync } from "node:zlib";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { SDK_SCRIPT } from "./sdk.ts";

const gzipped = gzipSync(SDK_SCRIPT);

/** GET /sdk.js: the page tag, gzipped when the browser takes it; public, cached for 5 minutes. */
export const sdkRoute: FastifyPluginAsync = async (app) => {
  const schema = {
    tags: ["ingest"],
    summary: "The page tag",
    description:
      "Defines `impressions.track({ adId, userId?, element?, video? })` (the impression and, given the ad's " +
      "element, its viewability by the MRC's rule) and `impressions.click(id)`: sendBeacon, then fetch, then the " +
      "pixel, one id each.",
    response: {
      200: {
        description: "the script, gzipped when the browser takes it; public, cached for 5 minutes",
        content: { "text/javascript": { schema: z.string() } },
      },
    },
  };
  app.get("/sdk.js", { schema }, async (request, reply) => {
    reply
      .type("text/javascript; charset=utf-8")
      .header("cache-control", "public, max-age=300")
      .header("vary", "accept-encoding");
    if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
      return reply.header("content-encoding", "gzip").send(gzipped);
    }
    return reply.send(SDK_SCRIPT);
  });
};
