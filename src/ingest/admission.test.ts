import { describe, expect, it } from "vitest";
import { Admission } from "./admission.ts";

describe("Admission", () => {
  it("admits up to the limit at once and the next waiter when one is released, in arrival order", async () => {
    const admission = new Admission(2, 1000);
    await admission.acquire();
    await admission.acquire();
    const order: string[] = [];
    const third = admission.acquire().then(() => order.push("third"));
    const fourth = admission.acquire().then(() => order.push("fourth"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual([]);
    admission.release();
    await third;
    expect(order).toEqual(["third"]);
    admission.release();
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
  });

  it("answers a 503 overloaded to a request that waited longer than maxWaitMs, and forgets it", async () => {
    const admission = new Admission(1, 30);
    await admission.acquire();
    const started = Date.now();
    await expect(admission.acquire()).rejects.toMatchObject({ statusCode: 503, code: "overloaded" });
    expect(Date.now() - started).toBeLessThan(500);
    admission.release();
    await expect(admission.acquire()).resolves.toBeUndefined();
  });
});
