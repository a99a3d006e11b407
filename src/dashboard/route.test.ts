import type { ClickHouseClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { gateOver } from "../../test/support/keys.ts";
import { buildApp } from "../api/app.ts";
import { hashSecret } from "../auth/keys-file.ts";
import { loadConfig } from "../config.ts";
import type { ImpressionProducer } from "../kafka/producer.ts";

const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
});

async function appFor(role: "all" | "ingest" | "query", auth: "off" | "required" = "off") {
  const config = loadConfig({ AUTH: auth, API_ROLE: role, API_KEYS_FILE: "/nonexistent/keys.json" });
  const gate = gateOver(config, {
    version: 1,
    keys: [{ name: "dash", scope: "query", sha256: hashSecret("qry-dash"), createdAt: "2026-12-01T10:00:00.000Z" }],
  });
  const app = await buildApp({
    config,
    producer: {} as ImpressionProducer,
    clickhouse: {} as ClickHouseClient,
    checks: {},
    gate,
    logger: false,
  });
  apps.push(app);
  return app;
}

const ASSETS = [
  ["/dashboard/dashboard.js", "text/javascript; charset=utf-8"],
  ["/dashboard/dashboard.css", "text/css; charset=utf-8"],
  ["/dashboard/uplot.iife.min.js", "text/javascript; charset=utf-8"],
  ["/dashboard/uplot.min.css", "text/css; charset=utf-8"],
] as const;

describe("GET / (the dashboard)", () => {
  it("answers the page with a strict CSP, a viewport meta, and assets of its own origin only", async () => {
    const app = await appFor("all");
    const page = await app.inject({ url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/https?:|\*|unsafe/);
    expect(page.body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1" />');
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    expect(assets.filter((url) => url !== "data:,").sort()).toEqual(
      ASSETS.map(([path]) => path.slice(1)).sort(), // relative: the page works behind a path prefix too
    );
    // No inline script or style, which the CSP would block.
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page.body).not.toMatch(/<style|\sstyle="/);
  });

  it("serves its scripts and styles, uPlot's among them, from the API itself", async () => {
    const app = await appFor("query");
    for (const [url, type] of ASSETS) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers["content-type"], url).toBe(type);
      expect(response.body.length, url).toBeGreaterThan(1000);
    }
    expect((await app.inject({ url: "/dashboard/uplot.iife.min.js" })).body).toContain("uPlot");
  });

  it("is public while keys are required; the data it reads is not", async () => {
    const app = await appFor("all", "required");
    expect((await app.inject({ url: "/" })).statusCode).toBe(200);
    expect((await app.inject({ url: "/dashboard/dashboard.js" })).statusCode).toBe(200);
    expect((await app.inject({ url: "/stats/pipeline" })).statusCode).toBe(401);
  });

  it("is served by the query roles only, and never documented in OpenAPI", async () => {
    expect((await (await appFor("ingest")).inject({ url: "/" })).statusCode).toBe(404);
    const document = (await (await appFor("all")).inject({ url: "/openapi.json" })).json();
    expect(Object.keys(document.paths).filter((path) => path === "/" || path.startsWith("/dashboard"))).toEqual([]);
    expect(Object.keys(document.paths)).toContain("/stats/pipeline");
  });
});
