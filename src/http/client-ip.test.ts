import { describe, expect, it } from "vitest";
import { clientBucketId } from "./client-ip.ts";

describe("clientBucketId", () => {
  it("keeps an IPv4 address as it is", () => {
    expect(clientBucketId("203.0.113.7")).toBe("203.0.113.7");
    expect(clientBucketId("127.0.0.1")).toBe("127.0.0.1");
  });

  it("puts every address of one IPv6 /64 in one bucket, and another /64 in another", () => {
    const bucket = "2001:db8:1:2::/64";
    for (const address of [
      "2001:db8:1:2::1",
      "2001:db8:1:2:ffff:ffff:ffff:ffff",
      "2001:0db8:0001:0002:0000:0000:0000:0009",
      "2001:DB8:1:2:a:b:c:d",
      "2001:db8:1:2::7%eth0",
      "2001:db8:1:2:0:0:192.0.2.1",
    ]) {
      expect(clientBucketId(address), address).toBe(bucket);
    }
    expect(clientBucketId("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(clientBucketId("::1")).toBe("0:0:0:0::/64");
    expect(clientBucketId("fe80::1")).toBe("fe80:0:0:0::/64");
    expect(clientBucketId("2001:db8::")).toBe("2001:db8:0:0::/64");
  });

  it("counts an IPv4-mapped IPv6 address as its IPv4 address", () => {
    expect(clientBucketId("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(clientBucketId("::FFFF:203.0.113.7")).toBe("203.0.113.7");
    expect(clientBucketId("::ffff:cb00:7107")).toBe("203.0.113.7");
    expect(clientBucketId("0:0:0:0:0:ffff:203.0.113.7")).toBe("203.0.113.7");
  });

  it("leaves anything it cannot read as it is (a socket's address always reads)", () => {
    for (const text of ["1::2::3", "2001:db8:1:2:3:4:5:6:7", "gggg::1", "::ffff:1.2.3.999", "1:2:3:4:5:6:7"]) {
      expect(clientBucketId(text), text).toBe(text);
    }
  });
});
