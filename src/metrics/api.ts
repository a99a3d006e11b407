import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Request latencies from well under a millisecond (a cached answer) to the 2 s produce timeout and past it. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * A family's series by their label values, each looked up once: prom-client hashes a label object (sorting its
 * keys) on every call. The label values are route patterns, methods and status codes, so the map stays small.
 */
function seriesOf<T>(child: (...values: string[]) => T): (...values: string[]) => T {
  const series = new Map<string, T>();
  return (...values) => {
    const key = values.join("\u0000");
    let found = series.get(key);
    if (found === undefined) {
      found = child(...values);
      series.set(key, found);
    }
    return found;
  };
}

/**
 * A counter of one label, summed in plain numbers and handed to prom-client at each scrape: a prom-client increment
 * validates and hashes its labels, a measurable share of an /event request's cost (docs/BENCHMARKS-ARCHIVE.md).
 */
function countedAtScrape<L extends string>(options: { name: string; help: string; label: L; registers: Registry[] }) {
  const since = new Map<string, number>();
  const counter = new Counter({
    name: options.name,
    help: options.help,
    labelNames: [options.label] as const,
    registers: options.registers,
    collect() {
      for (const [value, events] of since) this.labels(value).inc(events);
      since.clear();
    },
  });
  return {
    counter,
    add(value: string, events: number): void {
      since.set(value, (since.get(value) ?? 0) + events);
    },
  };
}

/** The API process's metric families (docs/METRICS.md lists them with their meaning). */
export function apiMetrics(registry: Registry, bufferedBytes: () => number) {
  const registers = [registry];
  const requestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time from request to response, by route pattern, method and status.",
    labelNames: ["route", "method", "status_code"] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const received = countedAtScrape({
    name: "impressions_received_total",
    help: "Events acknowledged by Kafka and answered 2xx, by route.",
    label: "route",
    registers,
  });
  const traffic = countedAtScrape({
    name: "impressions_traffic_total",
    help: "Events acknowledged by Kafka and answered 2xx, by traffic label: valid, unclassified or the invalid reason.",
    label: "traffic",
    registers,
  });
  const requestSeries = seriesOf((route, method, status) => requestDuration.labels(route, method, status));
  const produceDuration = new Histogram({
    name: "kafka_produce_duration_seconds",
    help: "Time from sending a produce request to Kafka's ack (or failure), per produce request.",
    buckets: LATENCY_BUCKETS,
    registers,
  });
  return {
    requestDuration,
    received: received.counter,
    traffic: traffic.counter,
    /** One answered request: its route pattern, method, status and time from request to response. */
    observeRequest(route: string, method: string, status: number, seconds: number): void {
      requestSeries(route, method, String(status)).observe(seconds);
    },
    /** Events acknowledged by Kafka and answered 2xx on `route`. */
    countReceived(route: string, events: number): void {
      received.add(route, events);
    },
    /** Events acknowledged by Kafka and answered 2xx, with the traffic label `label`. */
    countTraffic(label: string, events: number): void {
      traffic.add(label, events);
    },
    /** One produce request settled by Kafka, `seconds` after it was sent; a request carries many senders' events. */
    observeProduce(seconds: number): void {
      produceDuration.observe(seconds);
    },
    rejected: new Counter({
      name: "impressions_rejected_total",
      help: "Events refused for failing validation, by error code (one per event; a batch counts each item).",
      labelNames: ["reason"] as const,
      registers,
    }),
    clicks: new Counter({
      name: "clicks_redirected_total",
      help:
        "GET /click redirects, by what became of the click: acked (before the redirect), late (after it), lost " +
        "(not acknowledged in time: not counted, unless the write landed), rate_limited (not sent).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    unavailable: new Counter({
      name: "ingest_unavailable_total",
      help: "Ingest requests answered 503, by error code.",
      labelNames: ["reason"] as const,
      registers,
    }),
    producerBuffered: new Gauge({
      name: "kafka_producer_buffered_bytes",
      help: "Bytes of records handed to the producer and not yet settled by Kafka.",
      registers,
      collect() {
        this.set(bufferedBytes());
      },
    }),
  };
}

export type ApiMetrics = ReturnType<typeof apiMetrics>;
