import { describe, expect, it } from "vitest";
import { clientKey, isIpAddress, networkPrefix, parseAddress } from "./ip-address.ts";

describe("parseAddress", () => {
  it("reads dotted IPv4 as a number, and an IPv4-mapped IPv6 address as its IPv4 address", () => {
    expect(parseAddress("0.0.0.0")).toEqual({ version: 4, value: 0, text: "0.0.0.0" });
    expect(parseAddress("203.0.113.9")).toEqual({ version: 4, value: 0xcb007109, text: "203.0.113.9" });
    expect(parseAddress("255.255.255.255")).toEqual({ version: 4, value: 0xffffffff, text: "255.255.255.255" });
    expect(parseAddress("::ffff:203.0.113.9")).toEqual({ version: 4, value: 0xcb007109 });
  });

  it("reads IPv6 as 32 hex digits, whatever its notation", () => {
    const hex = "20010db8000100000000000000000005";
    expect(parseAddress("2001:db8:1::5")).toEqual({ version: 6, hex });
    expect(parseAddress("2001:0DB8:0001:0000:0000:0000:0000:0005")).toEqual({ version: 6, hex });
    expect(parseAddress("::1")).toEqual({ version: 6, hex: `${"0".repeat(31)}1` });
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1..2.3",
    "1.2.3.",
    "a.b.c.d",
    "example.com",
    "1.2.3.4/8",
  ])("reads %j as no address", (text) => {
    expect(parseAddress(text)).toBeUndefined();
    expect(isIpAddress(text)).toBe(false);
  });
});

describe("what is kept of an address", () => {
  it("stores the network only: IPv4 /24, IPv6 /48", () => {
    const of = (text: string) => networkPrefix(parseAddress(text) as NonNullable<ReturnType<typeof parseAddress>>);
    expect(of("203.0.113.9")).toBe("203.0.113.0/24");
    expect(of("255.255.255.255")).toBe("255.255.255.0/24");
    expect(of("::ffff:198.51.100.200")).toBe("198.51.100.0/24");
    expect(of("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1::/48");
    expect(of("2001:db8::1")).toBe("2001:db8:0::/48");
  });

  it("counts activity per IPv4 address and per IPv6 /64", () => {
    const of = (text: string) => clientKey(parseAddress(text) as NonNullable<ReturnType<typeof parseAddress>>);
    expect(of("203.0.113.9")).toBe("203.0.113.9");
    expect(of("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(of("2001:db8:1:2:3:4:5:6")).toBe(of("2001:db8:1:2:ffff::1"));
    expect(of("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
  });
});
