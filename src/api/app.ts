import type { ClickHouseClient } from "@clickhouse/client";
import underPressure from "@fastify/under-pressure";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, LogController } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import { ClickDomains } from "../auth/click-domains.ts";
import type { Config } from "../config.ts";
import { dashboardRoutes } from "../dashboard/route.ts";
import { AppError, errorSpec } from "../errors.ts";
import { createGate, type Gate, guardRoutes, rateCharger, refuseQueryKeysInUrls } from "../http/access-hooks.ts";
import { answerClientError, installErrorHandlers } from "../http/error-responses.ts";
import { documentErrors, registerOpenApi } from "../http/openapi.ts";
import { serializerCompiler } from "../http/schemas.ts";
import { clickRoute } from "../ingest/click.ts";
import { createDelivery } from "../ingest/deliver.ts";
import type { IntakeLimits } from "../ingest/intake.ts";
import { pixelRoute } from "../ingest/pixel.ts";
import { ingestRoutes } from "../ingest/routes.ts";
import { sdkRoute } from "../ingest/sdk/route.ts";
import { ACK_SHARE_OF_PRODUCE_TIMEOUT, type ImpressionProducer } from "../kafka/producer.ts";
import type { ApiMetrics } from "../metrics/api.ts";
import { pipelineRoutes } from "../stats/pipeline-totals.ts";
import { createStatsReader, queryLimits, type StatsReader } from "../stats/reader.ts";
import { statsRoutes } from "../stats/routes.ts";
import { type TrafficClassifier, trafficClassifier } from "../traffic/classify.ts";
import { loadIpRanges } from "../traffic/ip-ranges-watcher.ts";
import { registerCors } from "./cors.ts";
import { type EngineCheck, healthRoutes } from "./health.ts";
import { lagRoute } from "./lag-route.ts";
import { roleServes, servedElsewhere } from "./role.ts";

export interface AppDependencies {
  config: Config;
  /** Required when the role serves ingest (all, ingest). */
  producer?: ImpressionProducer;
  /** Required when the role serves queries (all, query): createQueryClickHouse in production (read-only). */
  clickhouse?: ClickHouseClient;
  /** The query routes' reader over `clickhouse`; by default one with the config's limits (queryLimits). */
  statsReader?: StatsReader;
  /** Engine probes for /readyz, by engine name. */
  checks: Record<string, EngineCheck>;
  /** Keys, scopes and rate limits (createGate); the API refuses to build without one unless AUTH=off. */
  gate?: Gate;
  /**
   * Labels the traffic of each event (src/traffic/): src/api/main.ts passes one reading the watched IP ranges file.
   * By default the config's (IVT_CLASSIFICATION), its IP ranges file read once; null: none (every event unclassified).
   */
  traffic?: TrafficClassifier | null;
  /** The API's metric families (apiMetrics); none recorded when absent. */
  metrics?: ApiMetrics;
  /** The process's logger; false for none (tests); by default one at LOG_LEVEL. */
  logger?: false | FastifyBaseLogger;
}

/** A 1 s event-loop stall means requests already wait longer than senders should: shed new ones. */
const MAX_EVENT_LOOP_DELAY_MS = 1000;
const READINESS_CHECK_TIMEOUT_MS = 1000;
/** How often Node checks each connection's header and request timeouts (its default, 30 s, fires them that late). */
const CONNECTIONS_CHECK_MS = 1000;
const METRICS_KAFKA_TIMEOUT_MS = 1500;
const PIPELINE_KAFKA_TIMEOUT_MS = 1500;

const INGEST_PATHS = ["/event", "/events", "/pixel.gif", "/click"];
const QUERY_PATHS = ["/stats", "/stats/timeseries", "/stats/reach", "/stats/summary", "/stats/ivt", "/stats/pipeline"];
const METRICS_PATH = "/metrics";

/** Codes that refuse one event (or one whole body) for what it holds: counted as rejected events. */
const EVENT_REJECTIONS = new Set(["invalid_event", "invalid_query", "malformed_json", "empty_body"]);

/** Ingest errors as metrics: 503s by reason, refused events by code (a batch's items are counted by the route). */
function observeIngestErrors(metrics: ApiMetrics) {
  return (request: FastifyRequest, error: AppError) => {
    if (!INGEST_PATHS.includes(request.routeOptions.url ?? "")) return;
    if (errorSpec(error.code).status === 503) metrics.unavailable.inc({ reason: error.code });
    else if (EVENT_REJECTIONS.has(error.code)) metrics.rejected.inc({ reason: error.code });
  };
}

/** Each ingest body's budgets, from the config. */
export function bodyLimits(config: Config): IntakeLimits {
  return {
    minBytesPerSecond: config.BODY_MIN_BYTES_PER_SECOND,
    graceMs: config.BODY_GRACE_MS,
    perClient: config.INGEST_BODIES_PER_IP,
    perKey: config.INGEST_BODIES_PER_KEY,
  };
}

/** The config's classifier, its IP ranges file (if any) read once: tests and tools that build the app themselves. */
function defaultClassifier(config: Config): TrafficClassifier | undefined {
  const file = config.IVT_IP_RANGES_FILE;
  const ranges = file === undefined ? undefined : loadIpRanges(file);
  return trafficClassifier(config, ranges && (() => ranges));
}

/** Builds the API from explicit dependencies: external plugins, then app plugins, then routes. */
export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  const gate = deps.gate ?? createGate(config, undefined);
  const chargeEvents = rateCharger(gate);
  const role = config.API_ROLE;
  const { ingest: servesIngest, queries: servesQueries } = roleServes(role);
  const app = Fastify({
    ...(deps.logger === false
      ? { logger: false }
      : deps.logger
        ? { loggerInstance: deps.logger }
        : { logger: { level: config.LOG_LEVEL } }),
    // A log line per request would cost more than handling an event; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Lets a SIGTERM close idle keep-alive sockets at once instead of waiting for their timeout.
    forceCloseConnections: "idle",
    // Every connection's budgets (docs/API.md, "Timeouts and limits"); each body's are the ingest routes'.
    http: { headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_MS },
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    // request.ip (rate limits, traffic classification) takes X-Forwarded-For from these proxies only.
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY : false,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Declared once, so each request object keeps one shape (guardRoutes' check sets it).
  app.decorateRequest("apiKey", undefined);
  const { metrics } = deps;
  installErrorHandlers(app, metrics && observeIngestErrors(metrics));
  // First of all hooks, on every route: a query key in a URL is refused whatever else the request is.
  app.addHook("onRequest", refuseQueryKeysInUrls);
  app.addHook("onRoute", documentErrors(["key_in_url"]));
  if (metrics) {
    // A callback hook, not an async one: no promise per request.
    app.addHook("onResponse", (request, reply, done) => {
      // The route's pattern, never the raw URL: one series per route, whatever the query strings.
      const route = request.routeOptions.url ?? "unmatched";
      metrics.observeRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }
  await registerCors(app, {
    ingestPaths: servesIngest ? INGEST_PATHS : [],
    queryPaths: [...(servesQueries ? QUERY_PATHS : []), METRICS_PATH],
    ingestOrigins: config.CORS_INGEST_ORIGINS,
    queryOrigins: config.CORS_QUERY_ORIGINS,
  });
  await registerOpenApi(app);

  await app.register(healthRoutes, { checks: deps.checks, checkTimeoutMs: READINESS_CHECK_TIMEOUT_MS });
  if (servesIngest) await app.register(sdkRoute);
  // The dashboard's page and assets are public (they hold no data); the routes it reads are keyed.
  if (servesQueries) await app.register(dashboardRoutes);
  await app.register(servedElsewhere, { config });
  await app.register(async (metrics) => {
    guardRoutes(metrics, gate, "query", { everyAd: true });
    await metrics.register(lagRoute, {
      brokers: config.KAFKA_BROKERS,
      clientId: config.KAFKA_CLIENT_ID,
      topic: config.KAFKA_TOPIC,
      group: config.KAFKA_CONSUMER_GROUP,
      timeoutMs: METRICS_KAFKA_TIMEOUT_MS,
    });
  });

  // Load shedding covers the serving routes only: liveness must keep answering under load.
  await app.register(async (serving) => {
    serving.addHook("onRoute", documentErrors(["overloaded"]));
    await serving.register(underPressure, {
      maxEventLoopDelay: MAX_EVENT_LOOP_DELAY_MS,
      pressureHandler: (_request, reply, type) => {
        // Through the error handler, so the 503 is counted like any other.
        reply.send(new AppError("overloaded", `the server is overloaded (${type}); retry shortly`));
      },
    });

    if (servesIngest) {
      if (!deps.producer) throw new Error(`API_ROLE=${role} serves ingest and needs a Kafka producer`);
      const limits = { maxFutureSkewMs: config.MAX_FUTURE_SKEW_MS, retentionDays: config.RETENTION_DAYS };
      const deliver = createDelivery(deps.producer, metrics);
      const traffic = deps.traffic === undefined ? defaultClassifier(config) : (deps.traffic ?? undefined);
      const countTraffic = metrics?.countTraffic;
      await serving.register(async (ingest) => {
        guardRoutes(ingest, gate, "ingest");
        await ingest.register(ingestRoutes, {
          deliver,
          countRejected: metrics && ((reason, events) => metrics.rejected.inc({ reason }, events)),
          ...limits,
          batchMaxEvents: config.BATCH_MAX_EVENTS,
          batchMaxBytes: config.BATCH_MAX_BYTES,
          admissionWaitMs: Math.round(config.PRODUCE_TIMEOUT_MS * (1 - ACK_SHARE_OF_PRODUCE_TIMEOUT)),
          chargeEvents,
          bodies: bodyLimits(config),
          traffic,
          countTraffic,
        });
      });
      await serving.register(async (pixel) => {
        guardRoutes(pixel, gate, "pixel");
        await pixel.register(pixelRoute, { deliver, limits, chargeEvents, traffic, countTraffic });
      });
      await serving.register(async (click) => {
        guardRoutes(click, gate, "click");
        await click.register(clickRoute, {
          deliver,
          chargeEvents,
          clickDomains: new ClickDomains(config.CLICK_DOMAINS),
          ackWaitMs: config.CLICK_ACK_WAIT_MS,
          countClick: metrics && ((outcome) => metrics.clicks.inc({ outcome })),
          traffic,
          countTraffic,
        });
      });
    }
    if (servesQueries) {
      if (!deps.clickhouse) throw new Error(`API_ROLE=${role} serves queries and needs a ClickHouse client`);
      // One reader per process: its slots bound the ClickHouse queries in flight over every query route.
      const reader = deps.statsReader ?? createStatsReader(deps.clickhouse, queryLimits(config));
      await serving.register(async (query) => {
        guardRoutes(query, gate, "query");
        await query.register(statsRoutes, { reader, config });
      });
      await serving.register(async (totals) => {
        guardRoutes(totals, gate, "query", { everyAd: true });
        await totals.register(pipelineRoutes, { reader, config, kafkaTimeoutMs: PIPELINE_KAFKA_TIMEOUT_MS });
      });
    }
  });
  return app;
}
