import { gzipSync } from "node:zlib";
import type { FastifyPluginAsync } from "fastify";
import { SDK_SCRIPT } from "./sdk.ts";

const gzipped = gzipSync(SDK_SCRIPT);

/** GET /sdk.js: the page tag, gzipped when the browser takes it; public, cached for 5 minutes. */
export const sdkRoute: FastifyPluginAsync = async (app) => {
  app.get("/sdk.js", async (request, reply) => {
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
