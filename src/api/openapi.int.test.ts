import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Admin } from "@platformatic/kafka";
import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useBrowser } from "../../test/support/browser.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import {
  bodiesOf,
  type Document,
  examplesOf,
  type Operation,
  operations,
  parametersOf,
  responsesOf,
  schemaValidator,
  successOf,
} from "../../test/support/openapi.ts";
import { Keyring } from "../auth/keyring.ts";
import { hashSecret } from "../auth/keys-file.ts";
import { createGate } from "../http/access-hooks.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { buildApp } from "./app.ts";

// The document against the running API: every example it gives is sent, and must get the status it documents.

const suffix = randomUUID().slice(0, 8);
const names = {
  ...ownTopics("openapi"),
  KAFKA_CONSUMER_GROUP: `openapi-group-${suffix}`,
  KAFKA_PARTITIONS: "2",
};
const config = testConfig(names);
const db = useTestDatabase(() => config);
const browser = useBrowser();
const validate = schemaValidator();
let producer: ImpressionProducer;
const apps: FastifyInstance[] = [];

async function appWith(overrides: Record<string, string> = {}, keyring?: Keyring) {
  // GET /click's example sends the person to shop.example: a destination the API allows.
  const own = testConfig({
    ...names,
    CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE,
    CLICK_DOMAINS: "shop.example",
    ...overrides,
  });
  const gate = keyring && createGate(own, { current: () => keyring });
  const app = await buildApp({ config: own, producer, clickhouse: db.clickhouse, checks: {}, gate, logger: false });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  // GET /metrics measures the worker group's lag: the group must exist, as it does once a worker committed.
  const admin = new Admin({ clientId: "openapi-test", bootstrapBrokers: config.KAFKA_BROKERS });
  await admin.alterConsumerGroupOffsets({
    groupId: config.KAFKA_CONSUMER_GROUP,
    topics: [{ name: config.KAFKA_TOPIC, partitionOffsets: [{ partition: 0, offset: 0n }] }],
  });
  await admin.close();
});
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await producer?.close();
});

async function documentOf(app: FastifyInstance): Promise<Document> {
  return (await app.inject({ url: "/openapi.json" })).json();
}

/** The requests an operation's examples make: each body example in its content type, or one query of them all. */
function exampleRequests(method: string, path: string, operation: Operation): InjectOptions[] {
  const verb = method.toUpperCase() as "GET" | "POST";
  const bodies = bodiesOf(operation);
  if (bodies.length > 0) {
    return bodies.flatMap(([type, media]) =>
      examplesOf(media).map((example) => ({
        method: verb,
        url: path,
        headers: { "content-type": type },
        payload: typeof example === "string" ? example : JSON.stringify(example),
      })),
    );
  }
  const query = new URLSearchParams();
  for (const parameter of parametersOf(operation)) {
    const [example] = examplesOf(parameter);
    for (const value of Array.isArray(example) ? example : example === undefined ? [] : [example]) {
      query.append(parameter.name, String(value));
    }
  }
  return [{ method: verb, url: query.size > 0 ? `${path}?${query}` : path }];
}

describe("the document's examples, sent to the API", () => {
  it("each get the status documented, with a body of the documented type and schema", async () => {
    const app = await appWith();
    let sent = 0;
    for (const { method, path, operation } of operations(await documentOf(app))) {
      const status = successOf(operation);
      const content = Object.entries(responsesOf(operation).find(([s]) => Number(s) === status)?.[1].content ?? {});
      for (const request of exampleRequests(method, path, operation)) {
        const response = await app.inject(request);
        const name = `${request.method} ${request.url} (${JSON.stringify(request.headers ?? {})})`;
        expect(response.statusCode, `${name}: ${response.body}`).toBe(status);
        sent++;
        // A redirect (GET /click) has no body: where it sends the person is what it answers.
        if (status >= 300) {
          expect(response.headers.location, name).toMatch(/^https:\/\//);
          continue;
        }
        const type = String(response.headers["content-type"]).split(";")[0] as string;
        const media = content.find(([documented]) => documented === type)?.[1];
        expect(media, `${name} answered ${type}`).toBeDefined();
        if (type === "application/json")
          expect(validate(media?.schema as object, response.json()), name).toBeUndefined();
      }
    }
    // A body example per content type (2 + 3), and one request for each other operation.
    expect(sent).toBe(5 + 12);
  });

  it("with keys required: the secured ones answer 401 without a key and their status with one of their scope", async () => {
    const createdAt = "2026-11-24T10:00:00.000Z";
    const keyring = new Keyring({
      version: 1,
      keys: [
        { name: "site", scope: "ingest", sha256: hashSecret("ing-site"), createdAt },
        { name: "dash", scope: "query", sha256: hashSecret("qry-dash"), createdAt },
      ],
    });
    const app = await appWith({ AUTH: "required" }, keyring);
    for (const { method, path, operation } of operations(await documentOf(app))) {
      const [request] = exampleRequests(method, path, operation) as [InjectOptions];
      const scope = operation.security?.[0]?.bearer?.[0];
      const key = scope === "ingest" ? "ing-site" : "qry-dash";
      const withKey = { ...request, headers: { ...request.headers, authorization: `Bearer ${key}` } };
      const without = await app.inject(request);
      if (scope === undefined) {
        expect(without.statusCode, path).toBe(successOf(operation));
      } else {
        expect(without.statusCode, path).toBe(401);
        expect(Object.keys(operation.responses ?? {}), path).toContain("401");
        expect((await app.inject(withKey)).statusCode, path).toBe(successOf(operation));
      }
    }
  });
});

describe("GET /docs in a browser", () => {
  it("renders every operation, loading nothing from another origin", async () => {
    const app = await appWith();
    await app.listen({ host: "127.0.0.1", port: 0 });
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const page = await browser().newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    page.on("requestfailed", (request) => problems.push(`failed: ${request.url()}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    await page.goto(`${origin}/docs`);
    await page.locator(".opblock").nth(13).waitFor({ timeout: 30_000 });
    expect(await page.locator(".opblock").count()).toBe(14);
    await page.close();
    expect(problems).toEqual([]);
    expect(requested).toContain(`${origin}/docs/json`);
    expect(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith("data:"))).toEqual([]);
  });
});
