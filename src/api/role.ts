import type { FastifyPluginAsync, HTTPMethods } from "fastify";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";

export type ApiRole = Config["API_ROLE"];

/**
 * What an API process of a role serves. ingest: POST /event, /events, GET /pixel.gif, /click and /sdk.js, which write
 * to Kafka; queries: /stats* and the dashboard, which read ClickHouse. `all` serves both.
 */
export function roleServes(role: ApiRole): { ingest: boolean; queries: boolean } {
  return { ingest: role !== "query", queries: role !== "ingest" };
}

const QUERY_ROUTES: [HTTPMethods, string][] = [
  ["GET", "/"],
  ["GET", "/stats"],
  ["GET", "/stats/*"],
  ["GET", "/dashboard/*"],
];
const INGEST_ROUTES: [HTTPMethods, string][] = [
  ["POST", "/event"],
  ["POST", "/events"],
  ["GET", "/pixel.gif"],
  ["GET", "/click"],
  ["GET", "/sdk.js"],
];

/**
 * The routes of the other role answer a 404 that says where they are served: `npm start` runs ingest and queries
 * in processes of their own, on two ports. Refused before any body is read; not in the process's OpenAPI document.
 */
export const servedElsewhere: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  const serves = roleServes(config.API_ROLE);
  const refuse = (routes: [HTTPMethods, string][], where: string) => {
    for (const [method, url] of routes) {
      app.route({
        method,
        url,
        schema: { hide: true },
        onRequest: async (request) => {
          throw new AppError("not_found", `${request.method} ${request.url.split("?")[0]} is served by ${where}`);
        },
        handler: async () => undefined,
      });
    }
  };
  if (!serves.queries) {
    refuse(
      QUERY_ROUTES,
      `the query API (API_ROLE=query), not by this ingest API: under npm start at port ${config.QUERY_PORT} (QUERY_PORT)`,
    );
  }
  if (!serves.ingest) {
    refuse(
      INGEST_ROUTES,
      "the ingest API (API_ROLE=ingest), not by this query API: under npm start at PORT (3000 by default)",
    );
  }
};
