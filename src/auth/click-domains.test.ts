import { describe, expect, it } from "vitest";
import { CLICK_DOMAIN } from "../config.ts";
import { ClickDomains, parseDestination } from "./click-domains.ts";

describe("click domains", () => {
  it.each(["shop.example", "*.shop.example", "localhost", "127.0.0.1", "xn--80ak6aa92e.example", "a-b.c"])(
    "takes %s",
    (domain) => expect(CLICK_DOMAIN.test(domain)).toBe(true),
  );

  it.each([
    "",
    "*",
    "*.",
    "Shop.example",
    "shop.example/",
    "https://shop.example",
    "-a.example",
    "a..b",
    "*.*.a",
    "a.*.b",
  ])("refuses %j", (domain) => expect(CLICK_DOMAIN.test(domain)).toBe(false));

  it("allows a host by name, and the subdomains of a *. pattern but not its apex", () => {
    const domains = new ClickDomains(["shop.example", "*.cdn.example"]);
    expect(domains.allows("shop.example")).toBe(true);
    expect(domains.allows("a.cdn.example")).toBe(true);
    expect(domains.allows("a.b.cdn.example")).toBe(true);
    expect(domains.allows("cdn.example")).toBe(false);
    expect(domains.allows("www.shop.example")).toBe(false);
    expect(domains.allows("shop.example.evil")).toBe(false);
    expect(domains.allows("evilcdn.example")).toBe(false);
  });
});

describe("parseDestination", () => {
  it.each([
    ["https://shop.example/p?a=1&b=2#top", "https://shop.example/p?a=1&b=2#top"],
    ["HTTP://Shop.Example:8080", "http://shop.example:8080/"],
  ])("takes %s as %s", (raw, href) => {
    expect(parseDestination(raw).href).toBe(href);
  });

  it.each([
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "https://shop.example\\@evil.example",
    "https://shop.example@evil.example",
    "https://user:pw@shop.example/",
    " https://shop.example/",
    "https://shop.example/\n",
    "https://",
    "ftp://shop.example/",
    "/landing",
    "shop.example",
    `https://shop.example/${"a".repeat(2100)}`,
  ])("refuses %j with invalid_destination", (raw) => {
    expect(() => parseDestination(raw)).toThrow(expect.objectContaining({ code: "invalid_destination" }));
  });
});
