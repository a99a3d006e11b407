import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { createImpressionProducer } from "../kafka/producer.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { buildApp } from "./app.ts";
import { PREFLIGHT_MAX_AGE_SECONDS } from "./cors.ts";

const apps: FastifyInstance[] = [];
const closing: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(closing.map((close) => close()));
});

async function appWith(overrides: Record<string, string> = {}) {
  const config = testConfig(overrides);
  const producer = createImpressionProducer(config);
  const clickhouse = createClickHouse(config);
  closing.push(
    () => producer.close(),
    () => clickhouse.close(),
  );
  const app = await buildApp({ config, producer, clickhouse, checks: {}, logger: false });
  apps.push(app);
  return app;
}

const preflight = (app: FastifyInstance, url: string, origin: string, method = "POST") =>
  app.inject({
    method: "OPTIONS",
    url,
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": "content-type" },
  });

describe("CORS", () => {
  it("ingest routes answer preflights from any origin by default, cached, without credentials", async () => {
    const app = await appWith();
    for (const url of ["/event", "/events", "/pixel.gif"]) {
      const response = await preflight(app, url, "https://publisher.example");
      expect(response.statusCode).toBe(204);
      expect(response.headers["access-control-allow-origin"]).toBe("*");
      expect(response.headers["access-control-allow-methods"]).toBe("GET, POST");
      expect(response.headers["access-control-allow-headers"]).toBe("content-type, authorization, x-api-key");
      expect(response.headers["access-control-max-age"]).toBe(String(PREFLIGHT_MAX_AGE_SECONDS));
      expect(response.headers["access-control-allow-credentials"]).toBeUndefined();
    }
    // The answer itself carries the header too, errors included, so the page can read it.
    const answer = await app.inject({
      method: "POST",
      url: "/event",
      headers: { origin: "https://publisher.example", "content-type": "text/plain" },
      payload: "{",
    });
    expect(answer.statusCode).toBe(400);
    expect(answer.headers["access-control-allow-origin"]).toBe("*");
  });

  it("with CORS_INGEST_ORIGINS, only the listed origins get the header", async () => {
    const app = await appWith({ CORS_INGEST_ORIGINS: "https://a.example,https://b.example" });
    const listed = await preflight(app, "/event", "https://b.example");
    expect(listed.headers["access-control-allow-origin"]).toBe("https://b.example");
    expect(listed.headers.vary).toContain("Origin");
    const other = await preflight(app, "/event", "https://evil.example");
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("query routes answer no origin by default, and only CORS_QUERY_ORIGINS when set", async () => {
    const closed = await appWith();
    for (const url of ["/stats?timeWindowMinutes=5", "/metrics"]) {
      const response = await preflight(closed, url, "https://publisher.example", "GET");
      expect(response.statusCode).toBe(404);
      expect(response.headers["access-control-allow-origin"]).toBeUndefined();
    }
    const open = await appWith({ CORS_QUERY_ORIGINS: "https://dash.example" });
    const listed = await preflight(open, "/stats?timeWindowMinutes=5", "https://dash.example", "GET");
    expect(listed.statusCode).toBe(204);
    expect(listed.headers["access-control-allow-origin"]).toBe("https://dash.example");
    expect(listed.headers["access-control-allow-methods"]).toBe("GET");
    const other = await preflight(open, "/stats", "https://publisher.example", "GET");
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("answers carry the headers for pages only: a sender without an Origin header (a server, an app) gets none", async () => {
    const app = await appWith({ CORS_QUERY_ORIGINS: "https://dash.example" });
    const event = (headers: Record<string, string>) =>
      app.inject({
        method: "POST",
        url: "/event?x=1",
        headers: { "content-type": "text/plain", ...headers },
        payload: "{",
      });
    const fromServer = await event({});
    expect(fromServer.statusCode).toBe(400);
    expect(Object.keys(fromServer.headers).filter((name) => name.startsWith("access-control-"))).toEqual([]);
    const fromPage = await event({ origin: "https://publisher.example" });
    expect(fromPage.headers["access-control-allow-origin"]).toBe("*");
    expect(fromPage.headers["access-control-expose-headers"]).toBe(
      "retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset",
    );
    expect(fromPage.headers.vary).toBeUndefined();

    // A query answer differs by Origin, so every one says so to caches, with or without the header (here
    // refusals of a missing window, which need no data).
    const stats = (headers: Record<string, string>) => app.inject({ url: "/stats", headers });
    const listed = await stats({ origin: "https://dash.example" });
    expect(listed.statusCode).toBe(400);
    expect(listed.headers["access-control-allow-origin"]).toBe("https://dash.example");
    expect(listed.headers.vary).toContain("Origin");
    const unlisted = await stats({ origin: "https://publisher.example" });
    expect(unlisted.headers["access-control-allow-origin"]).toBeUndefined();
    expect(unlisted.headers.vary).toContain("Origin");
    expect((await stats({})).headers.vary).toContain("Origin");
  });

  it("a wrong origin list stops the process with the variable named", () => {
    expect(() => testConfig({ CORS_QUERY_ORIGINS: "https://dash.example/path" })).toThrow(/CORS_QUERY_ORIGINS/);
  });
});
