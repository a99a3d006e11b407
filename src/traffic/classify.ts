import type { Config } from "../config.ts";
import { DEFAULT_EVENT_KIND, type EventKind, type Stamp, type ViewerEvidence } from "../impression/fields.ts";
import { clientKey, networkPrefix, parseAddress } from "../ip-address.ts";
import { ActivityWindows } from "./activity.ts";
import { IpRanges } from "./ip-ranges.ts";
import { type InvalidReason, VALID } from "./labels.ts";
import { type UserAgentClass, UserAgentClasses } from "./user-agent.ts";

/** What the ingest routes read of an HTTP request (src/ingest/viewer.ts), before any event of it is labelled. */
export interface RequestFacts {
  /**
   * The request's own headers describe the viewer: the pixel, or a POST sent by a page. Otherwise a server
   * sends for viewers, and each event's `userAgent` and `ip` describe its viewer.
   */
  fromViewer: boolean;
  /** It carries Origin or Sec-Fetch-* headers: a page's fetch, beacon or image sent it. */
  pageSignals: boolean;
  userAgent: string | undefined;
  /** The client's address (the socket's, or X-Forwarded-For's through TRUST_PROXY). */
  ip: string | undefined;
  /** A prefetch or prerender header (src/traffic/prefetch.ts). */
  prefetch: boolean;
  /** Its key was created with --browser: only browsers may send with it. */
  browserKey: boolean;
}

/** What is known of one viewer, ready for the rules. */
interface Viewer {
  prefetch: boolean;
  userAgent: UserAgentClass | undefined;
  nonBrowser: boolean;
  listed: boolean;
  /** The client's activity key (its IPv4 address or IPv6 /64); undefined when its address is not known. */
  client: string | undefined;
  ipPrefix: string | undefined;
}

/** A request's part of the classification, worked out once however many events it carries. */
export interface RequestSignals {
  /** The viewer, when the request's headers describe it; undefined for a server's request. */
  viewer: Viewer | undefined;
  /** A server's request on a --browser key: every event of it is non-browser traffic. */
  nonBrowser: boolean;
}

/**
 * The event's part: who saw which ad (no one identified: no userId), what of the impression it records, when, and
 * what a sender says of the viewer.
 */
export type LabelledEvent = { adId: string; userId?: string; kind?: EventKind; ts?: number } & ViewerEvidence;

export interface ClassifierOptions {
  /** The operator's listed ranges now (the file's watcher), or none. */
  ipRanges: () => IpRanges;
  /** More impressions than this of one ad to one user within the window are invalid. */
  activityPerUser: number;
  /** More impressions than this of one ad from one client IP within the window are invalid. */
  activityPerIp: number;
  activityWindowMs: number;
  /** Keys counted per rule and window at most (each a few dozen bytes). */
  activityMaxKeys?: number;
}

const ACTIVITY_MAX_KEYS = 200_000;

/**
 * Labels each event `valid`, or with the first invalid reason that fires, in this order (docs/STATS.md):
 *
 * 1. `prefetch`: the request was a prefetch or a prerender, not a view, whoever made it.
 * 2. `headless`: HeadlessChrome in the user agent, or `webdriver` reported with the event (isbot matches
 *    HeadlessChrome too: the more precise reason comes first).
 * 3. `bot`: a known bot's user agent.
 * 4. `non_browser`: a request without browser signals on a key created with --browser.
 * 5. `ip_range`: an address in the operator's ranges.
 * 6. `activity`: past the limit of impressions of one ad to one user, or from one client IP, in one window of
 *    event time (src/traffic/activity.ts). Each event kind is counted apart (an impression's viewable, click and
 *    video events are not more impressions: past the limit of clicks of one ad by one user, a click is invalid),
 *    and a viewer not identified only from its client IP.
 *    Last, as the only rule with state: it counts only the impressions no other rule took.
 *
 * A server's event without `userAgent`, `ip` or `webdriver`, on a key without --browser, carries no evidence and
 * is left unclassified (no stamp): counted as valid, reported apart. Pure but for the activity counters, which
 * are this process's own (docs/STATS.md, "Invalid traffic").
 */
export class TrafficClassifier {
  readonly #ipRanges: () => IpRanges;
  readonly #userAgents = new UserAgentClasses();
  readonly #perUser: ActivityWindows;
  readonly #perIp: ActivityWindows;

  constructor(options: ClassifierOptions) {
    this.#ipRanges = options.ipRanges;
    const maxKeys = options.activityMaxKeys ?? ACTIVITY_MAX_KEYS;
    const windowMs = options.activityWindowMs;
    this.#perUser = new ActivityWindows({ max: options.activityPerUser, windowMs, maxKeys });
    this.#perIp = new ActivityWindows({ max: options.activityPerIp, windowMs, maxKeys });
  }

  /** The request's signals: once per request, whatever the number of events. */
  request(facts: RequestFacts): RequestSignals {
    if (!facts.fromViewer) return facts.browserKey ? SERVER_ON_BROWSER_KEY : SERVER;
    const userAgent = facts.userAgent === undefined ? undefined : this.#userAgents.of(facts.userAgent);
    const browserLike = facts.pageSignals && (userAgent === "browser" || userAgent === "headless");
    return {
      viewer: this.#viewer(userAgent, facts.ip, facts.prefetch, facts.browserKey && !browserLike),
      nonBrowser: false,
    };
  }

  /**
   * The event's stamp: its label and the viewer's network; undefined when there is no evidence (unclassified).
   * `at`: when the API received it, the time of an event sent without `ts`.
   */
  stamp(signals: RequestSignals, event: LabelledEvent, at: number): Stamp | undefined {
    let viewer = signals.viewer;
    if (viewer === undefined) {
      const { userAgent, ip, webdriver } = event;
      if (userAgent === undefined && ip === undefined && webdriver === undefined && !signals.nonBrowser) {
        return undefined;
      }
      const userAgentClass = userAgent === undefined ? undefined : this.#userAgents.of(userAgent);
      viewer = this.#viewer(userAgentClass, ip, false, signals.nonBrowser);
    }
    const reason = this.#firstReason(viewer, event, at);
    return viewer.ipPrefix === undefined
      ? { traffic: reason ?? VALID }
      : { traffic: reason ?? VALID, ipPrefix: viewer.ipPrefix };
  }

  #viewer(
    userAgent: UserAgentClass | undefined,
    ip: string | undefined,
    prefetch: boolean,
    nonBrowser: boolean,
  ): Viewer {
    const address = ip === undefined ? undefined : parseAddress(ip);
    if (address === undefined) {
      return { prefetch, userAgent, nonBrowser, listed: false, client: undefined, ipPrefix: undefined };
    }
    const ranges = this.#ipRanges();
    return {
      prefetch,
      userAgent,
      nonBrowser,
      listed: !ranges.empty && ranges.has(address),
      client: clientKey(address),
      ipPrefix: networkPrefix(address),
    };
  }

  #firstReason(viewer: Viewer, event: LabelledEvent, at: number): InvalidReason | undefined {
    if (viewer.prefetch) return "prefetch";
    if (viewer.userAgent === "headless" || event.webdriver === true) return "headless";
    if (viewer.userAgent === "bot") return "bot";
    if (viewer.nonBrowser) return "non_browser";
    if (viewer.listed) return "ip_range";
    // On event time: a server's backlog of a day, sent at once, is not a burst.
    const when = event.ts ?? at;
    const { kind, userId } = event;
    // An impression's counters keyed by its ad as they were before kinds; another kind's apart ('|' is in no id).
    const first = kind === undefined || kind === DEFAULT_EVENT_KIND ? event.adId : `${kind}|${event.adId}`;
    const byUser = userId !== undefined && this.#perUser.count(first, userId, when);
    // Both counted whatever the other says: each sees every impression that reached this rule.
    const byClient = viewer.client !== undefined && this.#perIp.count(first, viewer.client, when);
    return byUser || byClient ? "activity" : undefined;
  }
}

const SERVER: RequestSignals = { viewer: undefined, nonBrowser: false };
const SERVER_ON_BROWSER_KEY: RequestSignals = { viewer: undefined, nonBrowser: true };

/**
 * The classifier the config asks for: undefined with IVT_CLASSIFICATION=off (every event unclassified). `ipRanges`
 * gives the listed ranges now (the file's watcher in production); none listed by default.
 */
export function trafficClassifier(
  config: Config,
  ipRanges: () => IpRanges = () => IpRanges.EMPTY,
): TrafficClassifier | undefined {
  if (config.IVT_CLASSIFICATION === "off") return undefined;
  return new TrafficClassifier({
    ipRanges,
    activityPerUser: config.IVT_ACTIVITY_MAX_PER_USER,
    activityPerIp: config.IVT_ACTIVITY_MAX_PER_IP,
    activityWindowMs: config.IVT_ACTIVITY_WINDOW_SECONDS * 1000,
  });
}
