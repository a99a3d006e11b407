import { describe, expect, it } from "vitest";
import { slotIdentity, uniqueOwner } from "./owner.ts";

describe("worker names", () => {
  it("a slot is named by WORKER_ID, or by the host and pm2's instance number", () => {
    expect(slotIdentity({ WORKER_ID: "eu-1", NODE_APP_INSTANCE: 3 }, "host-a")).toBe("eu-1");
    expect(slotIdentity({ WORKER_ID: undefined, NODE_APP_INSTANCE: 3 }, "host-a")).toBe("host-a-3");
    expect(slotIdentity({ WORKER_ID: undefined, NODE_APP_INSTANCE: 0 }, "host-a")).not.toBe(
      slotIdentity({ WORKER_ID: undefined, NODE_APP_INSTANCE: 1 }, "host-a"),
    );
  });

  it("a slot's name is a valid Kafka group.instance.id, so never a process's own name", () => {
    const slot = slotIdentity({ WORKER_ID: undefined, NODE_APP_INSTANCE: 1 }, "w:1 ö.example");
    expect(slot).toBe("w_1__.example-1");
    expect(slot).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(uniqueOwner()).toContain(":");
    expect(uniqueOwner()).not.toBe(uniqueOwner());
  });
});
