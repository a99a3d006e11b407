import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, minInsyncReplicas } from "./config.ts";

describe("loadConfig", () => {
  it("works on a fresh machine: every setting has a default", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      KAFKA_BROKERS: ["127.0.0.1:9092"],
      VALKEY_URL: "redis://127.0.0.1:6379",
      VALKEY_CLUSTER: false,
      RETENTION_DAYS: 30,
      AUTH: "required",
      API_KEYS_FILE: join(process.cwd(), ".data/dev/keys.json"),
      QUERY_RATE_PER_KEY: 20,
      QUERY_RATE_PER_IP: 20,
      PIXEL_MAX_EXPIRY_SECONDS: 86_400,
      CORS_INGEST_ORIGINS: ["*"],
      CORS_QUERY_ORIGINS: [],
    });
  });

  it("parses the front door's settings, and names a wrong one", () => {
    const config = loadConfig({
      AUTH: "required",
      CORS_INGEST_ORIGINS: "https://a.example, http://localhost:8080",
      INGEST_RATE_PER_IP: "50",
    });
    expect(config).toMatchObject({
      AUTH: "required",
      CORS_INGEST_ORIGINS: ["https://a.example", "http://localhost:8080"],
      INGEST_RATE_PER_IP: 50,
    });
    expect(() => loadConfig({ AUTH: "maybe" })).toThrow(/AUTH="maybe": must be required or off/);
    expect(() => loadConfig({ CORS_INGEST_ORIGINS: "a.example" })).toThrow(/CORS_INGEST_ORIGINS.0="a.example"/);
    expect(() => loadConfig({ INGEST_RATE_PER_IP: "0" })).toThrow(/INGEST_RATE_PER_IP="0"/);
  });

  it("parses the invalid-traffic settings: no proxy trusted and classification on by default", () => {
    expect(loadConfig({})).toMatchObject({
      TRUST_PROXY: [],
      IVT_CLASSIFICATION: "on",
      IVT_IP_RANGES_FILE: undefined,
      IVT_ACTIVITY_MAX_PER_USER: 20,
      IVT_ACTIVITY_MAX_PER_IP: 500,
      IVT_ACTIVITY_WINDOW_SECONDS: 60,
    });
    const config = loadConfig({
      TRUST_PROXY: "10.0.0.1, 192.168.0.0/16,loopback, 2001:db8::/32",
      IVT_IP_RANGES_FILE: "ranges.txt",
    });
    expect(config.TRUST_PROXY).toEqual(["10.0.0.1", "192.168.0.0/16", "loopback", "2001:db8::/32"]);
    expect(config.IVT_IP_RANGES_FILE).toBe(join(process.cwd(), "ranges.txt"));
    expect(() => loadConfig({ TRUST_PROXY: "10.0.0.1,proxy.example" })).toThrow(
      /TRUST_PROXY.1="10.0.0.1,proxy.example": each entry must be an IP address, a CIDR range/,
    );
    expect(() => loadConfig({ IVT_CLASSIFICATION: "no" })).toThrow(/IVT_CLASSIFICATION="no"/);
    expect(() => loadConfig({ IVT_ACTIVITY_MAX_PER_USER: "0" })).toThrow(/IVT_ACTIVITY_MAX_PER_USER="0"/);
  });

  it("refuses AUTH=auto, saying why and what to use instead", () => {
    expect(() => loadConfig({ AUTH: "auto" })).toThrow(
      /AUTH="auto": auto was removed: it ran the API open while the keys file held no key. Use required .* or off/,
    );
    expect(loadConfig({ AUTH: "off" }).AUTH).toBe("off");
  });

  it("resolves API_KEYS_FILE once, against the working directory, to an absolute path", () => {
    expect(loadConfig({ API_KEYS_FILE: "keys/k.json" }).API_KEYS_FILE).toBe(join(process.cwd(), "keys/k.json"));
    expect(loadConfig({ API_KEYS_FILE: "/etc/impressions/keys.json" }).API_KEYS_FILE).toBe(
      "/etc/impressions/keys.json",
    );
  });

  it("takes query rates of 0 (no limit) and up, and a pixel expiry limit of a second and up", () => {
    expect(
      loadConfig({ QUERY_RATE_PER_KEY: "0", QUERY_RATE_PER_IP: "5", PIXEL_MAX_EXPIRY_SECONDS: "300" }),
    ).toMatchObject({
      QUERY_RATE_PER_KEY: 0,
      QUERY_RATE_PER_IP: 5,
      PIXEL_MAX_EXPIRY_SECONDS: 300,
    });
    expect(() => loadConfig({ QUERY_RATE_PER_KEY: "-1" })).toThrow(/QUERY_RATE_PER_KEY="-1"/);
    expect(() => loadConfig({ PIXEL_MAX_EXPIRY_SECONDS: "0" })).toThrow(/PIXEL_MAX_EXPIRY_SECONDS="0"/);
  });

  it("parses lists and flags", () => {
    const config = loadConfig({
      KAFKA_BROKERS: "k1:9092, k2:9092",
      VALKEY_URL: "redis://v1:6379,redis://v2:6379",
      VALKEY_CLUSTER: "true",
    });
    expect(config.KAFKA_BROKERS).toEqual(["k1:9092", "k2:9092"]);
    expect(config.VALKEY_CLUSTER).toBe(true);
  });

  it("names every wrong variable, its value and what is expected", () => {
    const load = () =>
      loadConfig({ PORT: "http", KAFKA_BROKERS: "kafka", VALKEY_URL: "valkey", CLICKHOUSE_DATABASE: "a-b" });
    expect(load).toThrow(ConfigError);
    const message = (() => {
      try {
        load();
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain('PORT="http"');
    expect(message).toContain('KAFKA_BROKERS.0="kafka": each broker must be host:port');
    expect(message).toContain('VALKEY_URL="valkey": must be a URL');
    expect(message).toContain('CLICKHOUSE_DATABASE="a-b"');
    expect(message).not.toContain("RETENTION_DAYS");
  });

  it("takes KAFKA_MIN_INSYNC_REPLICAS up to the replication factor; by default 2 from three replicas on", () => {
    expect(minInsyncReplicas(loadConfig({}))).toBeUndefined();
    expect(minInsyncReplicas(loadConfig({ KAFKA_REPLICATION_FACTOR: "3" }))).toBe(2);
    expect(minInsyncReplicas(loadConfig({ KAFKA_REPLICATION_FACTOR: "5", KAFKA_MIN_INSYNC_REPLICAS: "3" }))).toBe(3);
    expect(() => loadConfig({ KAFKA_REPLICATION_FACTOR: "2", KAFKA_MIN_INSYNC_REPLICAS: "3" })).toThrow(
      /KAFKA_MIN_INSYNC_REPLICAS="3": must be at most KAFKA_REPLICATION_FACTOR \(2\)/,
    );
  });

  it("takes the connection budgets, the headers' within the request's, the idle one above every wait for an answer", () => {
    expect(loadConfig({ HTTP_HEADERS_TIMEOUT_MS: "500", HTTP_IDLE_TIMEOUT_MS: "30000" })).toMatchObject({
      HTTP_HEADERS_TIMEOUT_MS: 500,
      HTTP_REQUEST_TIMEOUT_MS: 60_000,
      HTTP_IDLE_TIMEOUT_MS: 30_000,
      BODY_MIN_BYTES_PER_SECOND: 4096,
      BODY_GRACE_MS: 5000,
      INGEST_BODIES_PER_IP: 128,
      INGEST_BODIES_PER_KEY: 1024,
    });
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: "70000" })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS.*HTTP_REQUEST_TIMEOUT_MS/,
    );
    expect(() => loadConfig({ QUERY_TIMEOUT_SECONDS: "120" })).toThrow(/HTTP_IDLE_TIMEOUT_MS.*125000 ms/);
    expect(loadConfig({ QUERY_TIMEOUT_SECONDS: "120", HTTP_IDLE_TIMEOUT_MS: "130000" }).HTTP_IDLE_TIMEOUT_MS).toBe(
      130_000,
    );
  });

  it("takes several Valkey URLs only for a cluster", () => {
    expect(() => loadConfig({ VALKEY_URL: "redis://v1:6379,redis://v2:6379" })).toThrow(
      /VALKEY_URL=.*set VALKEY_CLUSTER=true/,
    );
  });

  it("takes a worker slot's name only as a Kafka group.instance.id may be", () => {
    expect(loadConfig({}).WORKER_ID).toBeUndefined();
    expect(loadConfig({ WORKER_ID: "eu-west.worker_3" }).WORKER_ID).toBe("eu-west.worker_3");
    expect(() => loadConfig({ WORKER_ID: "host:0" })).toThrow(/WORKER_ID="host:0": must be 1-200 characters/);
  });
});

describe("every process's entry point", () => {
  it.each(["src/api/main.ts", "src/worker/main.ts", "src/storage/retention-cli.ts"])(
    "%s ends on a wrong variable with the lines naming it, no stack (exit 1)",
    (entry) => {
      const run = spawnSync(process.execPath, [entry], {
        cwd: join(import.meta.dirname, ".."),
        env: { ...process.env, PORT: "abc", RETENTION_DAYS: "x" },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('PORT="abc"');
      expect(run.stderr).toContain('RETENTION_DAYS="x"');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    },
  );
});
