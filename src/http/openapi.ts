import swagger, { type SwaggerTransform } from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance, FastifySchema, onRouteHookHandler } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import type { z } from "zod";
import pkg from "../../package.json" with { type: "json" };
import type { RouteAccess } from "../auth/access.ts";
import type { ErrorCode } from "../errors.ts";
import { errorResponses } from "./openapi-errors.ts";

declare module "fastify" {
  interface FastifySchema {
    /** Error codes the route can answer: documented per status, never used to serialize (sendError does). */
    errors?: readonly ErrorCode[];
    /** A body the handler parses and checks itself, by content type: documented only, Fastify validates none. */
    documentedBody?: Record<string, z.ZodType>;
  }
}

const OPENAPI_PATH = "/openapi.json";
const DOCS_PATH = "/docs";

/** Each way to present a key; the security requirements below name one of them with the key's scope. */
const SECURITY_SCHEMES = {
  bearer: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <key>`" },
  apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key", description: "`X-API-Key: <key>`" },
  apiKeyQuery: {
    type: "apiKey",
    in: "query",
    name: "key",
    description:
      "`?key=<key>`: ingest keys only (beacons and pixels cannot set headers); a query key in a URL is refused",
  },
} as const;

/** Any one scheme, with the scope the key must have as its role (OpenAPI 3.1 allows roles on any scheme). */
const INGEST_KEY = [{ bearer: ["ingest"] }, { apiKeyHeader: ["ingest"] }, { apiKeyQuery: ["ingest"] }];
const SECURITY: Record<RouteAccess, { [scheme in keyof typeof SECURITY_SCHEMES]?: string[] }[]> = {
  ingest: INGEST_KEY,
  pixel: INGEST_KEY,
  click: INGEST_KEY,
  query: [{ bearer: ["query"] }, { apiKeyHeader: ["query"] }],
};

const DESCRIPTION = `Impressions in, exact counts out; see docs/API.md and docs/STATS.md.

**Keys.** Unless the API runs with \`AUTH=off\`, the ingest routes need an **ingest** key and \`/stats*\` and
\`/metrics\` a **query** key (each operation's security names the scope); a query key limited to some ads
(\`--ads\`) reads only theirs, and not \`/stats/pipeline\` or \`/metrics\`. A query key in any URL is refused.
\`/healthz\`, \`/readyz\`, \`/sdk.js\`, \`/openapi.json\` and \`/docs\` never need one.

**Errors** are always \`{"error", "message", "details"?}\`; each response lists the codes of its status.`;

const withErrors = (schema: FastifySchema | undefined, errors: readonly ErrorCode[]): FastifySchema => ({
  ...schema,
  errors: [...(schema?.errors ?? []), ...errors],
});

/** Adds `errors` to what every route of a group documents (say, the group's load shedding). */
export function documentErrors(errors: readonly ErrorCode[]): onRouteHookHandler {
  return (route) => {
    route.schema = withErrors(route.schema, errors);
  };
}

/** Documents the key every route of a group needs, and the errors its check can answer. */
export function documentAccess(access: RouteAccess, errors: readonly ErrorCode[]): onRouteHookHandler {
  return (route) => {
    route.schema = { ...withErrors(route.schema, errors), security: SECURITY[access] };
  };
}

type JsonSchema = Record<string, unknown>;
type Transformed = FastifySchema & { body?: JsonSchema; response?: Record<string, JsonSchema> };

/**
 * fastify-type-provider-zod's transform does the zod to JSON Schema work; around it, a route's `errors` become
 * one error response per status (with their headers) and a `documentedBody` the request body.
 */
const transform: SwaggerTransform = (document) => {
  if (!document.schema || document.schema.hide) return jsonSchemaTransform(document);
  const { errors = [], documentedBody, response = {}, ...schema } = document.schema;
  const failures = errorResponses(errors);
  const bodies = Object.fromEntries(Object.entries(failures).map(([status, failure]) => [status, failure.body]));
  const json = jsonSchemaTransform({
    ...document,
    schema: { ...schema, response: { ...(response as object), ...bodies } },
  }).schema as Transformed;
  for (const [status, { headers }] of Object.entries(failures)) {
    const failure = json.response?.[status];
    if (failure && Object.keys(headers).length > 0) failure.headers = headers;
  }
  if (documentedBody) {
    const content = Object.entries(documentedBody).map(([type, body]) => {
      const converted = jsonSchemaTransform({ ...document, schema: { body } }).schema as Transformed;
      return [type, { schema: converted.body }];
    });
    json.body = { content: Object.fromEntries(content) };
  }
  return { schema: json, url: document.url };
};

/**
 * GET /openapi.json: an OpenAPI 3.1 document of the routes registered after this (so only those the role
 * serves), and Swagger UI at GET /docs; both public. Register it before the routes.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Impression pipeline API", version: pkg.version, description: DESCRIPTION },
      tags: [
        { name: "ingest", description: "send impressions: each answered only once Kafka has it" },
        { name: "query", description: "impressions, time series and reach per ad, exact, on event time" },
        { name: "health", description: "liveness, readiness and the workers' consumer lag" },
      ],
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    transform,
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    // Everything from this origin (the UI's assets come from the package): nothing else may load. Inline styles,
    // which Swagger UI sets, load nothing.
    staticCSP:
      "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'; " +
      "img-src 'self' data:; font-src 'self' data:; script-src 'self'; script-src-attr 'none'; " +
      "style-src 'self' 'unsafe-inline'",
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
}
