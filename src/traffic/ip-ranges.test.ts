import { describe, expect, it } from "vitest";
import { type Address, parseAddress } from "../ip-address.ts";
import { IpRanges, IpRangesError } from "./ip-ranges.ts";

const address = (text: string) => parseAddress(text) as Address;
const listed = (ranges: IpRanges, text: string) => ranges.has(address(text));
/** Asserts which addresses are listed, `{ address: listed }`; a failure names every address that is wrong. */
const expectListed = (ranges: IpRanges, expected: Record<string, boolean>) =>
  expect(Object.fromEntries(Object.keys(expected).map((text) => [text, listed(ranges, text)]))).toEqual(expected);

describe("IpRanges", () => {
  const ranges = IpRanges.parse(
    [
      "# data centers",
      "198.51.100.0/24",
      "203.0.113.7        # one abuser",
      "",
      "10.0.0.0/8",
      "10.1.0.0/16   # inside the one above",
      "2001:db8:ab::/48",
      "::ffff:192.0.2.0/120",
      "0.0.0.0/32",
    ].join("\n"),
    "ranges.txt",
  );

  it("lists a CIDR range from its first address to its last, and not one address beyond", () => {
    expectListed(ranges, {
      "198.51.100.0": true,
      "198.51.100.255": true,
      "198.51.99.255": false,
      "198.51.101.0": false,
      "10.255.255.255": true,
      "11.0.0.0": false,
      "9.255.255.255": false,
    });
  });

  it("lists a single address, exactly", () => {
    expectListed(ranges, {
      "203.0.113.7": true,
      "203.0.113.6": false,
      "203.0.113.8": false,
      "0.0.0.0": true,
      "0.0.0.1": false,
    });
  });

  it("lists IPv6 ranges, and IPv4-mapped ranges as IPv4", () => {
    expectListed(ranges, {
      "2001:db8:ab::": true,
      "2001:db8:ab:ffff:ffff:ffff:ffff:ffff": true,
      "2001:db8:ac::": false,
      "2001:db8:aa:ffff:ffff:ffff:ffff:ffff": false,
      "192.0.2.200": true,
      "::ffff:198.51.100.1": true,
    });
  });

  it("counts what the file listed, and an empty file lists nothing", () => {
    expect(ranges.listed).toBe(7);
    const empty = IpRanges.parse("# nothing yet\n\n", "empty.txt");
    expect(empty.empty).toBe(true);
    expect(listed(empty, "198.51.100.1")).toBe(false);
  });

  it("refuses a file with a line that is not an address or a range, naming the file and the lines", () => {
    const bad = () => IpRanges.parse("198.51.100.0/24\n198.51.100.0/33\nexample.com\n1.2.3\n", "bad.txt");
    expect(bad).toThrow(IpRangesError);
    expect(bad).toThrow(
      'IP ranges file bad.txt: not an IP address or CIDR range: line 2: "198.51.100.0/33"; line 3: "example.com"; line 4: "1.2.3"',
    );
  });
});
