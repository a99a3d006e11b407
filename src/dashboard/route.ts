import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { FastifyPluginAsync } from "fastify";

/**
 * The page may load and fetch from its own origin only; no inline script or style. `img-src data:` is for the
 * empty favicon the page declares (so the browser asks for no /favicon.ico).
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const require = createRequire(import.meta.url);
const own = (name: string) => readFileSync(new URL(name, import.meta.url));
const uplot = (name: string) => readFileSync(require.resolve(`uplot/dist/${name}`));

interface Asset {
  type: string;
  body: Buffer;
}

/**
 * GET / (the live dashboard) and its assets under /dashboard/, uPlot's among them: files read once, here, and
 * served from memory. Public: the page holds no data, it reads the keyed /stats* routes with the key it asks for.
 */
export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const assets: Record<string, Asset> = {
    "/": { type: "text/html; charset=utf-8", body: own("./index.html") },
    "/dashboard/dashboard.js": { type: "text/javascript; charset=utf-8", body: own("./dashboard.js") },
    "/dashboard/dashboard.css": { type: "text/css; charset=utf-8", body: own("./dashboard.css") },
    "/dashboard/uplot.iife.min.js": { type: "text/javascript; charset=utf-8", body: uplot("uPlot.iife.min.js") },
    "/dashboard/uplot.min.css": { type: "text/css; charset=utf-8", body: uplot("uPlot.min.css") },
  };
  for (const [url, { type, body }] of Object.entries(assets)) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(type)
        .header("content-security-policy", DASHBOARD_CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        // The page is small and changes with a deploy: always revalidated, never stale after one.
        .header("cache-control", "no-cache")
        .send(body),
    );
  }
};
