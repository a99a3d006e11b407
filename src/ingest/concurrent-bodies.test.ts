import { describe, expect, it } from "vitest";
import { ConcurrentBodies } from "./concurrent-bodies.ts";

describe("ConcurrentBodies", () => {
  it("lets a client send up to its cap at once, refuses one more with 429, and counts each ended body out", () => {
    const bodies = new ConcurrentBodies({ perClient: 2, perKey: 0 });
    bodies.enter("192.0.2.1", undefined);
    bodies.enter("192.0.2.1", undefined);
    expect(() => bodies.enter("192.0.2.1", undefined)).toThrow(
      expect.objectContaining({ code: "too_many_bodies", retryable: true }),
    );
    // Another client has its own count.
    bodies.enter("192.0.2.2", undefined);
    bodies.leave("192.0.2.1", undefined);
    bodies.enter("192.0.2.1", undefined);
    expect(bodies.ofClient("192.0.2.1")).toBe(2);
    bodies.leave("192.0.2.1", undefined);
    bodies.leave("192.0.2.1", undefined);
    expect(bodies.ofClient("192.0.2.1")).toBe(0);
  });

  it("caps a key over all its clients, and a refused body counts for neither", () => {
    const bodies = new ConcurrentBodies({ perClient: 5, perKey: 2 });
    bodies.enter("192.0.2.1", "publisher-a");
    bodies.enter("192.0.2.2", "publisher-a");
    expect(() => bodies.enter("192.0.2.3", "publisher-a")).toThrow(
      expect.objectContaining({ code: "too_many_bodies", message: expect.stringContaining('key "publisher-a"') }),
    );
    expect(bodies.ofClient("192.0.2.3")).toBe(0);
    bodies.enter("192.0.2.3", "publisher-b");
    bodies.leave("192.0.2.1", "publisher-a");
    bodies.enter("192.0.2.3", "publisher-a");
  });

  it("caps nothing when both caps are 0", () => {
    const bodies = new ConcurrentBodies({ perClient: 0, perKey: 0 });
    for (let n = 0; n < 1000; n++) bodies.enter("192.0.2.1", "k");
    expect(bodies.ofClient("192.0.2.1")).toBe(1000);
  });
});
