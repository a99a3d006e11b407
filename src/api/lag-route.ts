import { Admin } from "@platformatic/kafka";
import type { FastifyPluginAsync, FastifySchema } from "fastify";
import { z } from "zod";
import { AppError } from "../errors.ts";
import { sendError } from "../http/error-responses.ts";
import { type ConsumerLag, measureConsumerLag } from "../kafka/lag.ts";
import { withTimeout } from "../timeout.ts";

export interface LagRouteOptions {
  brokers: string[];
  clientId: string;
  topic: string;
  group: string;
  /** Kafka slower than this answers 503, so a scrape never hangs. */
  timeoutMs: number;
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeLabel = (value: string) => value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

/** The lag as Prometheus text exposition: one gauge family per measure, a series per partition. */
export function renderLagMetrics({ topic, group, partitions, total }: ConsumerLag): string {
  const labels = `topic="${escapeLabel(topic)}",group="${escapeLabel(group)}"`;
  const family = (name: string, help: string, series: string[]) =>
    [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...series].join("\n");
  const perPartition = (name: string, value: (p: ConsumerLag["partitions"][number]) => bigint | undefined) =>
    partitions.flatMap((p) => {
      const v = value(p);
      return v === undefined ? [] : [`${name}{${labels},partition="${p.partition}"} ${v}`];
    });
  return `${[
    family(
      "impressions_consumer_lag",
      "Messages of the partition the group has not committed yet.",
      perPartition("impressions_consumer_lag", (p) => p.lag),
    ),
    family("impressions_consumer_lag_total", "Messages of the topic the group has not committed yet.", [
      `impressions_consumer_lag_total{${labels}} ${total}`,
    ]),
    family(
      "impressions_log_end_offset",
      "Offset the next message written to the partition will get.",
      perPartition("impressions_log_end_offset", (p) => p.logEndOffset),
    ),
    family(
      "impressions_committed_offset",
      "Offset the group resumes the partition from (absent while it committed nothing).",
      perPartition("impressions_committed_offset", (p) => p.committedOffset),
    ),
  ].join("\n")}\n`;
}

/** GET /metrics: the consumer group's lag on the impressions topic, cluster-wide, as Kafka sees it. */
export const lagRoute: FastifyPluginAsync<LagRouteOptions> = async (app, options) => {
  const admin = new Admin({
    clientId: `${options.clientId}-metrics`,
    bootstrapBrokers: options.brokers,
    connectTimeout: options.timeoutMs,
    requestTimeout: options.timeoutMs,
    // A scrape is retried by the scraper; retrying here would only outlast its timeout.
    retries: 0,
  });
  app.addHook("onClose", () => admin.close());

  const schema = {
    tags: ["health"],
    summary: "The workers' consumer lag (Prometheus text)",
    response: {
      200: {
        description: "the consumer group's lag on the impressions topic, per partition and in total",
        content: {
          "text/plain": {
            schema: z.string().meta({
              examples: [
                renderLagMetrics({
                  topic: "impressions",
                  group: "impressions-workers",
                  partitions: [{ partition: 0, lag: 3n, logEndOffset: 1200n, committedOffset: 1197n }],
                  total: 3n,
                }),
              ],
            }),
          },
        },
      },
    },
    errors: ["kafka_unavailable"],
  } satisfies FastifySchema;
  app.get("/metrics", { schema }, async (request, reply) => {
    try {
      const lag = await withTimeout(
        measureConsumerLag(admin, options.topic, options.group),
        options.timeoutMs,
        "Kafka",
      );
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(renderLagMetrics(lag));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      request.log.warn({ err: error }, "cannot measure consumer lag");
      return sendError(reply, new AppError("kafka_unavailable", `cannot measure consumer lag: ${reason}`));
    }
  });
};
