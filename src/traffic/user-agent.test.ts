import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TrafficClassifier } from "./classify.ts";
import { IpRanges } from "./ip-ranges.ts";
import { classifyUserAgent, UserAgentClasses } from "./user-agent.ts";

interface Sample {
  kind: "crawler" | "tool" | "headless" | "browser";
  what: string;
  userAgent: string;
}

const corpus: Sample[] = readFileSync(new URL("./corpus/user-agents.tsv", import.meta.url), "utf8")
  .split("\n")
  .filter((line) => line !== "" && !line.startsWith("#"))
  .map((line) => {
    const [kind, what, userAgent] = line.split("\t");
    return { kind, what, userAgent } as Sample;
  });

/** The label a page's impression gets when its browser sends this user agent (and nothing else is wrong). */
function labelOf(userAgent: string): string | undefined {
  const classifier = new TrafficClassifier({
    ipRanges: () => IpRanges.EMPTY,
    activityPerUser: 1000,
    activityPerIp: 1000,
    activityWindowMs: 60_000,
  });
  const signals = classifier.request({
    fromViewer: true,
    pageSignals: true,
    userAgent,
    ip: "203.0.113.9",
    prefetch: false,
    browserKey: false,
  });
  return classifier.stamp(signals, { adId: "ad-1", userId: "u-1" }, Date.now())?.traffic;
}

describe("the user agents of src/traffic/corpus/user-agents.tsv", () => {
  const bots = corpus.filter((s) => s.kind !== "browser");
  const browsers = corpus.filter((s) => s.kind === "browser");

  it("holds at least 200 real user agents: crawlers, tools, headless browsers and browsers", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    expect(new Set(corpus.map((s) => s.kind))).toEqual(new Set(["crawler", "tool", "headless", "browser"]));
    expect(browsers.length).toBeGreaterThanOrEqual(100);
    expect(bots.length).toBeGreaterThanOrEqual(100);
  });

  it("labels at least 99% of the bots, tools and headless browsers invalid (bot or headless)", () => {
    const missed = bots.filter((s) => !["bot", "headless"].includes(labelOf(s.userAgent) ?? ""));
    expect(missed.map((s) => s.what)).toEqual([]);
    expect(1 - missed.length / bots.length).toBeGreaterThanOrEqual(0.99);
  });

  it("labels at most 0.5% of the browsers people use invalid", () => {
    const flagged = browsers.filter((s) => labelOf(s.userAgent) !== "valid");
    expect(flagged.map((s) => s.what)).toEqual([]);
    expect(flagged.length / browsers.length).toBeLessThanOrEqual(0.005);
  });

  it("tells headless browsers from other bots, and browsers from other clients", () => {
    expect(corpus.filter((s) => s.kind === "headless").map((s) => classifyUserAgent(s.userAgent))).toEqual(
      corpus.filter((s) => s.kind === "headless").map(() => "headless"),
    );
    expect(classifyUserAgent("curl/8.5.0")).toBe("bot");
    expect(browsers.every((s) => classifyUserAgent(s.userAgent) === "browser")).toBe(true);
    expect(classifyUserAgent("Roku/DVP-12.0 (12.0.0.4182-88)")).toBe("other");
  });
});

describe("UserAgentClasses", () => {
  it("answers what classifyUserAgent does, keeping at most its size of user agents", () => {
    const classes = new UserAgentClasses(2);
    const agents = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120", "Other/1.0", "curl/8.5.0"];
    expect(agents.map((a) => classes.of(a))).toEqual(agents.map(classifyUserAgent));
  });
});
