import type { ClickHouseClient } from "@clickhouse/client";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import {
  bodiesOf,
  type Document,
  examplesOf,
  operations,
  parametersOf,
  responsesOf,
  schemaValidator,
} from "../../test/support/openapi.ts";
import { loadConfig } from "../config.ts";
import { ERROR_CATALOGUE, type ErrorCode } from "../errors.ts";
import type { ImpressionProducer } from "../kafka/producer.ts";
import { buildApp } from "./app.ts";

const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
});

/** The API of `role`, built without engines: nothing here sends a request that would reach one. */
async function appFor(role: "all" | "ingest" | "query") {
  const config = loadConfig({ AUTH: "off", API_ROLE: role, API_KEYS_FILE: "/nonexistent/keys.json" });
  const app = await buildApp({
    config,
    producer: {} as ImpressionProducer,
    clickhouse: {} as ClickHouseClient,
    checks: {},
    logger: false,
  });
  apps.push(app);
  return app;
}

async function documentOf(app: FastifyInstance): Promise<Document> {
  const response = await app.inject({ url: "/openapi.json" });
  expect(response.statusCode).toBe(200);
  return response.json();
}

const all = await documentOf(await appFor("all"));
const validate = schemaValidator();

const INGEST = ["POST /event", "POST /events", "GET /pixel.gif", "GET /click", "GET /sdk.js"];
const QUERY = [
  "GET /stats",
  "GET /stats/timeseries",
  "GET /stats/reach",
  "GET /stats/summary",
  "GET /stats/ivt",
  "GET /stats/pipeline",
];
const HEALTH = ["GET /healthz", "GET /readyz", "GET /metrics"];
const named = (document: Document) => operations(document).map((o) => `${o.method.toUpperCase()} ${o.path}`);
const operation = (name: string) => {
  const found = operations(all).find((o) => `${o.method.toUpperCase()} ${o.path}` === name);
  if (!found) throw new Error(`${name} is not documented`);
  return found.operation;
};
/** The codes an operation documents for `status`, from its error body's `error` enum. */
const codes = (name: string, status: number): string[] => {
  const response = responsesOf(operation(name)).find(([s]) => Number(s) === status)?.[1];
  const schema = response?.content?.["application/json"]?.schema as { properties: { error: { enum: string[] } } };
  return schema?.properties.error.enum ?? [];
};

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(all));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("documents every route, tagged, and neither itself nor /docs", () => {
    expect(named(all).sort()).toEqual([...INGEST, ...QUERY, ...HEALTH].sort());
    for (const [tag, names] of [
      ["ingest", INGEST],
      ["query", QUERY],
      ["health", HEALTH],
    ] as const) {
      for (const name of names) expect(operation(name).tags, name).toEqual([tag]);
    }
  });

  it("names the key each route needs: ingest routes any scheme, query routes a header, the rest none", () => {
    const ingest = [{ bearer: ["ingest"] }, { apiKeyHeader: ["ingest"] }, { apiKeyQuery: ["ingest"] }];
    const query = [{ bearer: ["query"] }, { apiKeyHeader: ["query"] }];
    for (const name of ["POST /event", "POST /events", "GET /pixel.gif", "GET /click"])
      expect(operation(name).security).toEqual(ingest);
    for (const name of [...QUERY, "GET /metrics"]) expect(operation(name).security).toEqual(query);
    for (const name of ["GET /sdk.js", "GET /healthz", "GET /readyz"]) expect(operation(name).security).toBeUndefined();
    // The pixel's ?key= is the apiKeyQuery scheme, not one more parameter.
    expect(parametersOf(operation("GET /pixel.gif")).map((p) => p.name)).toEqual([
      "id",
      "ts",
      "userId",
      "adId",
      "kind",
      "webdriver",
      "exp",
      "sig",
    ]);
    expect(parametersOf(operation("GET /click")).map((p) => p.name)).toEqual([
      "id",
      "adId",
      "userId",
      "url",
      "exp",
      "sig",
    ]);
  });

  it("gives every error response the shared body, with codes of that status in the catalogue", () => {
    for (const { method, path, operation } of operations(all)) {
      for (const [status, response] of responsesOf(operation)) {
        if (Number(status) < 400) continue;
        const name = `${method} ${path} ${status}`;
        const media = response.content?.["application/json"];
        const schema = media?.schema as { properties: Record<string, { enum?: ErrorCode[] }>; required: string[] };
        expect(Object.keys(schema.properties), name).toEqual(["error", "message", "details"]);
        expect(schema.required, name).toEqual(["error", "message"]);
        const enumerated = schema.properties.error?.enum ?? [];
        expect(enumerated.length, name).toBeGreaterThan(0);
        for (const code of enumerated) expect(ERROR_CATALOGUE[code].status, `${name} ${code}`).toBe(Number(status));
        expect(
          examplesOf(media as object).map((e) => (e as { error: string }).error),
          name,
        ).toEqual(enumerated);
        const retryable = enumerated.some((code) => ERROR_CATALOGUE[code].retryable);
        expect(Object.keys(response.headers ?? {}).includes("retry-after"), name).toBe(retryable);
      }
    }
  });

  it("lists what each route can answer", () => {
    expect(codes("POST /event", 400)).toEqual(
      expect.arrayContaining(["invalid_event", "malformed_json", "empty_body"]),
    );
    expect(codes("POST /event", 401)).toEqual(["missing_api_key", "invalid_api_key"]);
    expect(codes("POST /event", 403)).toEqual(expect.arrayContaining(["wrong_scope", "origin_not_allowed"]));
    expect(codes("POST /event", 413)).toEqual(["payload_too_large"]);
    expect(codes("POST /event", 415)).toEqual(["unsupported_media_type"]);
    expect(codes("POST /event", 408)).toEqual(["request_timeout"]);
    expect(codes("POST /event", 429)).toEqual(["too_many_bodies", "rate_limited"]);
    expect(codes("POST /event", 503).sort()).toEqual(["kafka_unavailable", "overloaded", "shutting_down"]);
    expect(codes("POST /events", 400)).toEqual(
      expect.arrayContaining(["invalid_batch", "empty_batch", "all_events_rejected", "malformed_json"]),
    );
    expect(codes("POST /events", 413).sort()).toEqual([
      "batch_over_rate_limit",
      "event_too_large",
      "payload_too_large",
      "too_many_events",
    ]);
    expect(codes("GET /pixel.gif", 400)).toEqual(expect.arrayContaining(["invalid_query", "key_in_url"]));
    expect(codes("GET /pixel.gif", 403)).toEqual(
      expect.arrayContaining([
        "signature_required",
        "invalid_signature",
        "signature_expired",
        "signature_expiry_too_far",
      ]),
    );
    expect(codes("GET /stats", 400).sort()).toEqual(["invalid_query", "key_in_url", "query_too_large"]);
    expect(codes("GET /stats", 403).sort()).toEqual(["ad_not_allowed", "wrong_scope"]);
    expect(codes("GET /stats", 429)).toEqual(["rate_limited"]);
    expect(codes("GET /stats", 503).sort()).toEqual(["clickhouse_unavailable", "overloaded", "query_timeout"]);
    expect(codes("GET /stats/pipeline", 403).sort()).toEqual(["ad_not_allowed", "wrong_scope"]);
    expect(codes("GET /metrics", 403).sort()).toEqual(["ad_not_allowed", "wrong_scope"]);
    expect(codes("GET /metrics", 429)).toEqual(["rate_limited"]);
    expect(codes("GET /metrics", 503)).toEqual(["kafka_unavailable"]);
    expect(codes("GET /readyz", 503)).toEqual(["not_ready"]);
    for (const status of [401, 403]) expect(codes("GET /readyz", status), "public").toEqual([]);
    // Public, but a query key in its URL is refused like anywhere else.
    expect(responsesOf(operation("GET /healthz")).map(([status]) => status)).toEqual(["200", "400"]);
    expect(codes("GET /healthz", 400)).toEqual(["key_in_url"]);
  });

  it("has an example for every request body and query, and every response example fits its schema", () => {
    for (const { method, path, operation } of operations(all)) {
      const name = `${method} ${path}`;
      for (const [type, media] of bodiesOf(operation)) {
        expect(examplesOf(media).length, `${name} ${type}`).toBeGreaterThan(0);
      }
      for (const parameter of parametersOf(operation)) {
        if (parameter.required) expect(examplesOf(parameter), parameter.name).not.toEqual([]);
      }
      for (const [status, response] of responsesOf(operation)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          for (const example of examplesOf(media)) {
            expect(validate(media.schema as object, example), `${name} ${status} ${type}`).toBeUndefined();
          }
        }
      }
    }
  });

  it("has response examples, but for the bytes of the GIF and the tag", () => {
    for (const { method, path, operation } of operations(all)) {
      for (const [status, response] of responsesOf(operation)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          const bytes = type === "image/gif" || type === "text/javascript";
          expect(examplesOf(media).length > 0, `${method} ${path} ${status} ${type}`).toBe(!bytes);
        }
      }
    }
  });

  it("lists only the routes of the role", async () => {
    const ingest = named(await documentOf(await appFor("ingest")));
    const query = named(await documentOf(await appFor("query")));
    expect(ingest.sort()).toEqual([...INGEST, ...HEALTH].sort());
    expect(query.sort()).toEqual([...QUERY, ...HEALTH].sort());
    expect(ingest.filter((name) => name.includes("/stats"))).toEqual([]);
    expect(query.filter((name) => /\/(event|pixel|click|sdk)/.test(name))).toEqual([]);
  });
});

describe("GET /docs", () => {
  it("answers Swagger UI, whose assets and document all come from the API itself", async () => {
    const app = await appFor("all");
    const page = await app.inject({ url: "/docs" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    // The browser may load nothing from elsewhere, whatever the page or its scripts ask for.
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/https?:|\*/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      expect(asset, asset).toMatch(/^\/docs\/static\//);
      const response = await app.inject({ url: asset });
      expect(response.statusCode, asset).toBe(200);
    }
    const initializer = await app.inject({ url: "/docs/static/swagger-initializer.js" });
    expect(initializer.body).toContain("validatorUrl: null");
    expect((await app.inject({ url: "/docs/json" })).json()).toEqual(await documentOf(app));
  });
});
