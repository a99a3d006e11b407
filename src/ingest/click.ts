import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type ClickDomains, MAX_DESTINATION_LENGTH, parseDestination } from "../auth/click-domains.ts";
import { AppError } from "../errors.ts";
import type { ChargeEvents } from "../http/access-hooks.ts";
import { encodeImpressionBytes } from "../impression/codec.ts";
import { IDENTIFIER_PATTERN, type Impression } from "../impression/schema.ts";
import type { TrafficClassifier } from "../traffic/classify.ts";
import { UNCLASSIFIED } from "../traffic/labels.ts";
import { ignoreCachebusters } from "./cachebusters.ts";
import type { Deliver } from "./deliver.ts";
import { CACHEBUSTERS_IGNORED, keyParams, NO_CACHE } from "./pixel.ts";
import { requestFacts } from "./viewer.ts";

/**
 * What became of a click the redirect answered: Kafka acknowledged it before the redirect (`acked`) or after it
 * (`late`), or never did (`lost`: refused, or no ack within PRODUCE_TIMEOUT_MS); or it was over the key's or the
 * client's rate and not sent (`rate_limited`). Only `lost` and `rate_limited` clicks are not counted (but a `lost`
 * write that reached Kafka without its ack getting back in time, which is counted).
 */
export type ClickOutcome = "acked" | "late" | "lost" | "rate_limited";

export interface ClickOptions {
  deliver: Deliver;
  chargeEvents: ChargeEvents;
  /** Where every click may go (CLICK_DOMAINS), whatever the key. */
  clickDomains: ClickDomains;
  /** How long the person waits for Kafka's ack before being sent on (CLICK_ACK_WAIT_MS). */
  ackWaitMs: number;
  /** Counts each click by what became of it; undefined when metrics are off. */
  countClick?: (outcome: ClickOutcome) => void;
  /** Labels each click's traffic, as the pixel's (src/traffic/); undefined (IVT_CLASSIFICATION=off): unclassified. */
  traffic?: TrafficClassifier;
  /** Counts acknowledged events by traffic label; undefined when metrics are off. */
  countTraffic?: (label: string, events: number) => void;
}

function identifier(field: string) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be given once`) })
    .regex(IDENTIFIER_PATTERN, `${field} must be 1-128 characters of A-Z a-z 0-9 . _ : -`);
}

const querystring = z.strictObject(
  {
    id: identifier("id").meta({
      description: "the impression clicked: one click counts per impression id",
      examples: ["7f9c2b1e-4d3a-4e8f-9b6c-2a1d0e5f7c3b"],
    }),
    adId: identifier("adId").meta({ description: "the ad clicked", examples: ["ad-7"] }),
    userId: identifier("userId")
      .optional()
      .meta({ description: "who clicked; leave it out for a viewer not identified", examples: ["u-42"] }),
    url: z
      .string({ error: (issue) => (issue.input === undefined ? "url is required" : "url must be given once") })
      .max(MAX_DESTINATION_LENGTH, `url must be at most ${MAX_DESTINATION_LENGTH} characters`)
      .meta({
        description:
          "where to send the person: an absolute http(s) URL on a domain the key allows (--click-domain, " +
          "CLICK_DOMAINS) or, for a signed key, the one its signature covers",
        examples: ["https://shop.example/spring?utm_source=ad-7"],
      }),
    ...keyParams('"<id>|<adId>|<userId>|<exp>|click|<url>"'),
  },
  {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown query parameter: ${issue.keys.join(", ")}` : undefined,
  },
);

/**
 * Whether the request's key (or, with AUTH=off, no key) may send a person to `host`: CLICK_DOMAINS, the key's
 * own --click-domain, or any destination of a signed key, whose signature (checked before, in authorize) covers
 * the URL.
 */
function allowed(request: FastifyRequest, host: string, everyKey: ClickDomains): boolean {
  const key = request.apiKey;
  if (key?.signingSecret !== undefined) return true;
  return everyKey.allows(host) || (key?.clickDomains?.allows(host) ?? false);
}

/**
 * Resolves on Kafka's ack or its refusal, or after `waitMs`, whichever comes first; the delivery goes on, and
 * `settled` says how it ended: acknowledged in time, late, or never.
 */
function ackWithin(delivery: Promise<void>, waitMs: number, settled: (outcome: ClickOutcome) => void): Promise<void> {
  return new Promise((resolve) => {
    let waited = false;
    const timer = setTimeout(() => {
      waited = true;
      resolve();
    }, waitMs);
    const end = (outcome: ClickOutcome) => {
      clearTimeout(timer);
      settled(outcome);
      resolve();
    };
    delivery.then(
      () => end(waited ? "late" : "acked"),
      () => end("lost"),
    );
  });
}

/**
 * GET /click?id=…&adId=…&url=…: counts the click of impression `id` (kind click, once per impression) and sends the
 * person on with a 302 to `url`, only to an http(s) destination the key allows: never an open redirect. A person
 * is waiting, so the redirect waits for Kafka's ack at most `ackWaitMs`, then goes anyway; a click Kafka takes
 * later is counted, one it refuses is lost (docs/API.md, "GET /click").
 */
export const clickRoute: FastifyPluginAsync<ClickOptions> = async (app, options) => {
  const { deliver, chargeEvents, clickDomains, ackWaitMs, countClick, traffic, countTraffic } = options;
  const schema = {
    tags: ["ingest"],
    summary: "Count a click and send the person to the ad's destination",
    description:
      "Counts a click of the impression (once per impression id: a repeat click is a duplicate) and answers a " +
      "302 to `url`, an absolute http(s) URL on a domain the key allows, or signed with it; anything else is " +
      "refused, never redirected. The redirect waits for Kafka's ack at most CLICK_ACK_WAIT_MS and then goes " +
      `anyway (the click may then be lost if Kafka never takes it). ${CACHEBUSTERS_IGNORED}`,
    querystring,
    response: {
      302: z.null().meta({ description: "the person is sent to `url` (Location); never cached" }),
    },
    errors: ["invalid_query", "invalid_destination", "destination_not_allowed"],
  } satisfies FastifySchema;
  const preValidation = ignoreCachebusters(Object.keys(querystring.shape));
  app.withTypeProvider<ZodTypeProvider>().get("/click", { schema, preValidation }, async (request, reply) => {
    const { id, adId, userId, url } = request.query;
    const destination = parseDestination(url);
    if (!allowed(request, destination.hostname, clickDomains)) {
      const who = request.apiKey ? `key "${request.apiKey.name}"` : "this API (AUTH=off)";
      throw new AppError(
        "destination_not_allowed",
        `${who} may not send clicks to ${destination.hostname}: add it with --click-domain (or CLICK_DOMAINS), or ` +
          "sign the URL with a signed key",
      );
    }
    const receivedAt = Date.now();
    const event: Impression = { id, ts: receivedAt, adId, kind: "click", ...(userId !== undefined && { userId }) };
    try {
      chargeEvents(request, reply, 1);
      // The navigation's own headers describe the viewer, as an <img>'s do.
      const stamp = traffic?.stamp(traffic.request(requestFacts(request, "click")), event, receivedAt);
      const delivery = deliver("/click", [{ key: id, value: encodeImpressionBytes(event, receivedAt, stamp) }]);
      await ackWithin(delivery, ackWaitMs, (outcome) => {
        countClick?.(outcome);
        if (outcome !== "lost") countTraffic?.(stamp?.traffic ?? UNCLASSIFIED, 1);
      });
    } catch (error) {
      // Over the rate: the person is still sent on, the click not counted.
      if (!(error instanceof AppError && (error.code === "rate_limited" || error.code === "batch_over_rate_limit"))) {
        throw error;
      }
      countClick?.("rate_limited");
    }
    return (reply as FastifyReply).code(302).headers(NO_CACHE).header("location", destination.href).send();
  });
};
