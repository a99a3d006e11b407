import { resolve } from "node:path";
import ipaddr from "ipaddr.js";
import { z } from "zod";

/** Where the API keys live when API_KEYS_FILE is not set (relative to the working directory, resolved at start). */
export const DEFAULT_KEYS_FILE = ".data/dev/keys.json";

/** A browser origin as sent in the Origin header: scheme, host and port only, in normal form. */
export function isOrigin(value: string): boolean {
  return URL.canParse(value) && new URL(value).origin === value;
}

/**
 * Where a click may send a person (CLICK_DOMAINS, a key's --click-domain): a host name (`shop.example`, or an IPv4
 * address), or `*.` and a host name for any of its subdomains (`*.shop.example`: `a.shop.example`, not
 * `shop.example` itself). Lower case.
 */
export const CLICK_DOMAIN =
  /^(?:\*\.)?(?=[^*]{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Thrown when an environment variable does not parse; the message names every wrong variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** A comma-separated setting's entries, trimmed, empty ones dropped: "a, b,,c " -> ["a", "b", "c"]. */
const commaSeparated = (value: string) =>
  value
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);

/** A comma-separated list of origins (`https://a.example`) or `*`; parsed as given, normalised by URL. */
const originList = z
  .string()
  .transform(commaSeparated)
  .pipe(
    z.array(
      z.string().refine((o) => o === "*" || isOrigin(o), {
        error: "each origin must be * or scheme://host[:port] with no path, like https://a.example",
      }),
    ),
  );

/** Names proxy-addr (Fastify's trustProxy) takes for well-known ranges. */
const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];

/** TRUST_PROXY: comma-separated addresses, CIDR ranges or range names; empty trusts no proxy. */
const proxyList = z
  .string()
  .transform(commaSeparated)
  .pipe(
    z.array(
      z
        .string()
        .refine((entry) => PROXY_RANGE_NAMES.includes(entry) || ipaddr.isValid(entry) || ipaddr.isValidCIDR(entry), {
          error: `each entry must be an IP address, a CIDR range (10.0.0.0/8) or one of ${PROXY_RANGE_NAMES.join(", ")}`,
        }),
    ),
  );

const schema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(3000),
  /** Which routes this API process serves: ingest (/event, /events), query (/stats) or both. */
  API_ROLE: z.enum(["all", "ingest", "query"]).default("all"),
  // Read by ecosystem.config.cjs (pm2); parsed here too so a bad value stops the processes with a clear error.
  API_INSTANCES: int(1, 256).optional(),
  WORKER_INSTANCES: int(1, 256).optional(),
  QUERY_INSTANCES: int(1, 256).optional(),
  /**
   * Where `npm start` runs the query API (ecosystem.config.cjs gives it as PORT to the query app); an ingest
   * process names it when asked for a query route.
   */
  QUERY_PORT: int(1, 65535).default(3001),
  /** The query app's first metrics port under pm2 (ecosystem.config.cjs gives it as API_METRICS_PORT). */
  QUERY_METRICS_PORT: int(0, 65535).default(9484),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  KAFKA_BROKERS: z
    .string()
    .default("127.0.0.1:9092")
    .transform(commaSeparated)
    .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, "each broker must be host:port")).min(1)),
  KAFKA_CLIENT_ID: z.string().min(1).default("impressions"),
  KAFKA_TOPIC: z.string().min(1).default("impressions"),
  KAFKA_DLQ_TOPIC: z.string().min(1).default("impressions.dlq"),
  KAFKA_PARTITIONS: int(1, 10_000).default(16),
  KAFKA_REPLICATION_FACTOR: int(1, 16).default(1),
  /** Replicas that must have a write before it is acknowledged; unset: see minInsyncReplicas(). */
  KAFKA_MIN_INSYNC_REPLICAS: int(1, 16).optional(),
  KAFKA_CONSUMER_GROUP: z.string().min(1).default("impressions-worker"),
  /** Upper bound on waiting for the broker's ack before answering 503. */
  PRODUCE_TIMEOUT_MS: int(100, 60_000).default(2000),
  /** Bytes of produce requests allowed in flight before new ones are shed with 503. */
  PRODUCER_MAX_BUFFER_BYTES: int(1024).default(64 * 1024 * 1024),
  PRODUCER_LINGER_MS: int(0, 1000).default(2),

  /** One URL, or with VALKEY_CLUSTER=true the comma-separated URLs of some cluster nodes (seeds). */
  VALKEY_URL: z
    .string()
    .default("redis://127.0.0.1:6379")
    .refine((value) => value.split(",").every((url) => URL.canParse(url.trim())), {
      error: "must be a URL (redis://host:port), or comma-separated URLs of cluster nodes",
    }),
  VALKEY_CLUSTER: z
    .enum(["true", "false"])
    .default("false")
    .transform((value) => value === "true"),
  CLICKHOUSE_URL: z.url().default("http://127.0.0.1:8123"),
  CLICKHOUSE_DATABASE: z.string().regex(/^\w+$/).default("default"),
  CLICKHOUSE_USER: z.string().default("default"),
  CLICKHOUSE_PASSWORD: z.string().default(""),
  /**
   * A read-only user that provisioning creates (SELECT on CLICKHOUSE_DATABASE only) and the query routes connect
   * as; empty: they connect as CLICKHOUSE_USER, every query still sent with readonly=2.
   */
  CLICKHOUSE_QUERY_USER: z
    .string()
    .regex(/^([A-Za-z_]\w*)?$/, "must be a user name (letters, digits, _), or empty to use CLICKHOUSE_USER")
    .default("")
    .transform((name) => name || undefined),
  CLICKHOUSE_QUERY_PASSWORD: z.string().default(""),

  /** The query routes: ClickHouse queries in flight per process; more wait QUERY_QUEUE_WAIT_MS, then 503. */
  QUERY_CONCURRENCY: int(1, 256).default(4),
  QUERY_QUEUE_WAIT_MS: int(0, 60_000).default(1000),
  /** ClickHouse's max_execution_time for every query of the query routes; past it, 503 query_timeout. */
  QUERY_TIMEOUT_SECONDS: int(1, 3600).default(10),
  /** ClickHouse's max_memory_usage for every query of the query routes; past it, 400 query_too_large. */
  QUERY_MAX_MEMORY_BYTES: int(1024 * 1024).default(1024 * 1024 * 1024),
  /** The niceness query processes (API_ROLE=query) give themselves at start, so the kernel favours ingest; 0 keeps it. */
  QUERY_NICE: int(0, 19).default(10),
  /** A cluster of the servers' remote_servers: the tables are sharded and replicated over it. Empty: one server. */
  CLICKHOUSE_CLUSTER: z
    .string()
    .regex(
      /^([A-Za-z_]\w*)?$/,
      "must be a cluster name of remote_servers (letters, digits, _), or empty for one server",
    )
    .default("")
    .transform((name) => name || undefined),

  /** A repeated impression id within this window of its first sighting is a duplicate. */
  DEDUP_WINDOW_SECONDS: int(1).default(86_400),
  /** Raw impressions older than this are dropped by ClickHouse TTL and rejected at ingest. */
  RETENTION_DAYS: int(1, 3650).default(30),
  /** How far in the future an event's ts may be (clock skew of senders). */
  MAX_FUTURE_SKEW_MS: int(0).default(5 * 60_000),
  BATCH_MAX_EVENTS: int(1, 1_000_000).default(10_000),
  BATCH_MAX_BYTES: int(1024).default(10 * 1024 * 1024),

  /**
   * required: every keyed route needs a key from API_KEYS_FILE, and the API never runs open (on a missing, invalid or
   * key-less file it waits at start, listening on no port; a broken edit keeps the last good keys); off: no keys at
   * all, said at start.
   */
  AUTH: z
    .string()
    .default("required")
    .pipe(
      z.enum(["required", "off"], {
        error: (issue) =>
          issue.input === "auto"
            ? "auto was removed: it ran the API open while the keys file held no key. Use required (the default: " +
              "create a key with npm run keys -- create) or off (no keys at all)"
            : "must be required or off",
      }),
    ),
  /** Resolved once, at start, against the working directory: every later read names the same file. */
  API_KEYS_FILE: z
    .string()
    .min(1)
    .default(DEFAULT_KEYS_FILE)
    .transform((path) => resolve(path)),
  /** Origins a browser may send impressions from: `*` (ads render on many publishers' sites) or a list. */
  CORS_INGEST_ORIGINS: originList.default(["*"]),
  /** Origins whose pages may read stats and metrics (a dashboard on another origin); none by default. */
  CORS_QUERY_ORIGINS: originList.default([]),
  /**
   * The proxies in front of the API whose X-Forwarded-For is believed: the client IP (for rate limits and traffic
   * classification) is then the address they report. Empty: the socket's peer, whatever the header says.
   */
  TRUST_PROXY: proxyList.default([]),
  /** Label invalid traffic at ingest (src/traffic/); off: every event is unclassified. */
  IVT_CLASSIFICATION: z.enum(["on", "off"]).default("on"),
  /** The operator's IP ranges of invalid traffic (data centers, abusers): one address or CIDR per line; watched. */
  IVT_IP_RANGES_FILE: z
    .string()
    .default("")
    .transform((path) => (path === "" ? undefined : resolve(path))),
  /** The activity rule: more impressions of one ad to one user than this within the window are invalid. */
  IVT_ACTIVITY_MAX_PER_USER: int(1).default(20),
  /** The same from one client IP (an IPv4 address or IPv6 /64: many users share one behind a NAT). */
  IVT_ACTIVITY_MAX_PER_IP: int(1).default(500),
  /** The activity rule's window, in seconds of event time, aligned to the epoch. */
  IVT_ACTIVITY_WINDOW_SECONDS: int(1, 86_400).default(60),
  /** Events per second one client IP may send to the ingest routes; unset: no per-IP limit. */
  INGEST_RATE_PER_IP: int(1).optional(),
  /**
   * Requests per second a query key may make to /stats* and /metrics when the key has no rate of its own; 0: no
   * limit. The dashboard makes 6 requests every 5 s per tab: 20/s leaves room for many tabs on one key.
   */
  QUERY_RATE_PER_KEY: int(0).default(20),
  /** Requests per second one client IP may make to /stats* and /metrics while AUTH=off; 0: no limit. */
  QUERY_RATE_PER_IP: int(0).default(20),
  /**
   * How far ahead a signed pixel's exp may be. At most the dedup window (a day by default): a copy of a signed
   * pixel replayed before it expires is then always within the window of its first sighting, so never counted twice.
   */
  PIXEL_MAX_EXPIRY_SECONDS: int(1).default(86_400),
  /**
   * Where GET /click may send people whatever the key (and with AUTH=off): hosts, or *.host for subdomains,
   * comma-separated; keys add their own (--click-domain), signed keys any destination they sign.
   */
  CLICK_DOMAINS: z
    .string()
    .default("")
    .transform((value) => commaSeparated(value.toLowerCase()))
    .pipe(z.array(z.string().regex(CLICK_DOMAIN, "each domain must be a host like shop.example, or *.shop.example"))),
  /**
   * How long GET /click waits for Kafka's ack of the click before it sends the person on anyway: a person waits
   * for the page (docs/API.md, "GET /click").
   */
  CLICK_ACK_WAIT_MS: int(0, 60_000).default(500),
  /** Bodies one client (IPv4 address, IPv6 /64) may send to the ingest routes at once, per API process; 0: no cap. */
  INGEST_BODIES_PER_IP: int(0).default(128),
  /** Bodies one API key may send at once, per API process (from all its clients); 0: no cap. */
  INGEST_BODIES_PER_KEY: int(0).default(1024),

  // Budgets of every connection (docs/API.md, "Timeouts and limits"): a sender gets no more time than these.
  /** The request line and headers must arrive within this. */
  HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** The whole request, headers and body, must arrive within this. */
  HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  /** An idle keep-alive connection is closed after this: above a load balancer's usual 60 s. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(100, 600_000).default(72_000),
  /** A connection with no traffic either way for this long is closed; above the longest wait for an answer. */
  HTTP_IDLE_TIMEOUT_MS: int(1000, 3_600_000).default(60_000),
  /** A body must keep arriving at this many bytes per second, over each BODY_GRACE_MS, or it is cut; 0: off. */
  BODY_MIN_BYTES_PER_SECOND: int(0).default(4096),
  /** How long a body arrives at any pace before its rate is measured; then the stretch it is measured over. */
  BODY_GRACE_MS: int(100, 600_000).default(5000),

  /** Prometheus metrics of each process, each on a port of its own (pm2 shares the API port among processes). */
  METRICS: z.enum(["on", "off"]).default("on"),
  /** Where the metrics ports listen; loopback by default: they need no key, so do not expose them. */
  METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  /** The first API process's metrics port; pm2's NODE_APP_INSTANCE is added (0 picks a free port). */
  API_METRICS_PORT: int(0, 65535).default(9464),
  /** The first worker's metrics port; pm2's NODE_APP_INSTANCE is added (0 picks a free port). */
  WORKER_METRICS_PORT: int(0, 65535).default(9474),
  /** Set by pm2 for each instance of an app (0, 1, ...). */
  NODE_APP_INSTANCE: int(0, 1000).default(0),

  /**
   * Worker: the name of its process slot, kept across restarts (claims owner and Kafka static member id);
   * by default the host and NODE_APP_INSTANCE. Kafka's group.instance.id characters only.
   */
  WORKER_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,200}$/, "must be 1-200 characters of A-Z a-z 0-9 . _ -")
    .optional(),
  /** Worker: how long to gather messages before one ClickHouse insert. */
  WORKER_BATCH_MAX_WAIT_MS: int(10, 60_000).default(500),
  WORKER_BATCH_MAX_EVENTS: int(1, 1_000_000).default(20_000),
  /**
   * Worker: its GET /healthz says stalled once its partitions have lag and no batch was committed for this
   * long. 60 s is well above the longest pause of a healthy worker, about 35 s: a rebalance (up to 20 s), then
   * an insert that times out (5 s), the longest retry backoff (5 s) and the retried insert (5 s).
   */
  WORKER_STALL_SECONDS: int(1, 3600).default(60),
});

export type Config = z.infer<typeof schema>;

/** The name of every variable loadConfig reads: a deployment's environment can be checked against it. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

const checked = schema.superRefine((config, ctx) => {
  if (!config.VALKEY_CLUSTER && config.VALKEY_URL.includes(",")) {
    ctx.addIssue({
      code: "custom",
      path: ["VALKEY_URL"],
      message: "lists several URLs: set VALKEY_CLUSTER=true for a Valkey Cluster, or give one URL",
    });
  }
  // While a request waits for its answer its connection carries nothing: the idle timeout must outlast every wait
  // (a query's, with the 5 s its client allows past the server's timeout, src/storage/clickhouse.ts).
  const longestWaitMs = Math.max(config.PRODUCE_TIMEOUT_MS, config.QUERY_TIMEOUT_SECONDS * 1000 + 5000);
  if (config.HTTP_IDLE_TIMEOUT_MS <= longestWaitMs) {
    ctx.addIssue({
      code: "custom",
      path: ["HTTP_IDLE_TIMEOUT_MS"],
      message: `must be above PRODUCE_TIMEOUT_MS and QUERY_TIMEOUT_SECONDS + 5 s (${longestWaitMs} ms): a request waiting for its answer would be cut`,
    });
  }
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    ctx.addIssue({
      code: "custom",
      path: ["HTTP_HEADERS_TIMEOUT_MS"],
      message: `must be at most HTTP_REQUEST_TIMEOUT_MS (${config.HTTP_REQUEST_TIMEOUT_MS}): the headers are part of the request`,
    });
  }
  if ((config.KAFKA_MIN_INSYNC_REPLICAS ?? 0) > config.KAFKA_REPLICATION_FACTOR) {
    ctx.addIssue({
      code: "custom",
      path: ["KAFKA_MIN_INSYNC_REPLICAS"],
      message: `must be at most KAFKA_REPLICATION_FACTOR (${config.KAFKA_REPLICATION_FACTOR}): no write could ever be acknowledged`,
    });
  }
});

/**
 * The topics' min.insync.replicas: as set, else 2 with three or more replicas (a 2xx survives the loss of any
 * one broker, and one broker may be down without stopping ingestion); below three replicas, unset unless set
 * (the brokers' default applies).
 */
export function minInsyncReplicas(config: Config): number | undefined {
  return config.KAFKA_MIN_INSYNC_REPLICAS ?? (config.KAFKA_REPLICATION_FACTOR >= 3 ? 2 : undefined);
}

/** This process's metrics port: the base plus pm2's instance number, or any free port for a base of 0. */
export function metricsPort(config: Config, base: number): number {
  return base === 0 ? 0 : base + config.NODE_APP_INSTANCE;
}

/**
 * loadConfig for a process's entry point: a wrong variable ends the process with one line naming it (exit 1); a
 * stack would say nothing more.
 */
export function configOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = checked.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map(
    (i) => `  ${i.path.join(".")}=${JSON.stringify(env[String(i.path[0])])}: ${i.message}`,
  );
  throw new ConfigError(`invalid environment:\n${lines.join("\n")}`);
}
