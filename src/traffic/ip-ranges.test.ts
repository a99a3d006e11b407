import { describe, expect, it } from "vitest";
import { type Address, parseAddress } from "../ip-address.ts";
import { IpRanges, IpRangesError } from "./ip-ranges.ts";

const address = (text: string) => parseAddress(text) as Address;
const listed = (ranges: IpRanges, text: string) => ranges.has(address(text));

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
    expect(listed(ranges, "198.51.100.0")).toBe(true);
    expect(listed(ranges, "198.51.100.255")).toBe(true);
    expect(listed(ranges, "198.51.99.255")).toBe(false);
    expect(listed(ranges, "198.51.101.0")).toBe(false);
    expect(listed(ranges, "10.255.255.255")).toBe(true);
    expect(listed(ranges, "11.0.0.0")).toBe(false);
    expect(listed(ranges, "9.255.255.255")).toBe(false);
  });

  it("lists a single address, exactly", () => {
    expect(listed(ranges, "203.0.113.7")).toBe(true);
    expect(listed(ranges, "203.0.113.6")).toBe(false);
    expect(listed(ranges, "203.0.113.8")).toBe(false);
    expect(listed(ranges, "0.0.0.0")).toBe(true);
    expect(listed(ranges, "0.0.0.1")).toBe(false);
  });

  it("lists IPv6 ranges, and IPv4-mapped ranges as IPv4", () => {
    expect(listed(ranges, "2001:db8:ab::")).toBe(true);
    expect(listed(ranges, "2001:db8:ab:ffff:ffff:ffff:ffff:ffff")).toBe(true);
    expect(listed(ranges, "2001:db8:ac::")).toBe(false);
    expect(listed(ranges, "2001:db8:aa:ffff:ffff:ffff:ffff:ffff")).toBe(false);
    expect(listed(ranges, "192.0.2.200")).toBe(true);
    expect(listed(ranges, "::ffff:198.51.100.1")).toBe(true);
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
