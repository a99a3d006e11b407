import { describe, expect, it } from "vitest";
import { whenUsable } from "./usable-file.ts";

class Refusal extends Error {}

/**
 * A file as whenUsable sees it, on an injected clock: its version (what its stat says) and the problem reading it
 * would meet (none: usable). `at(ms, ...)` changes it when the clock gets there; each read is counted.
 */
function scriptedFile(problem: string | undefined) {
  const file = { version: "ENOENT", problem, now: 0, reads: [] as number[], reported: [] as string[] };
  const changes = new Map<number, Partial<typeof file>>();
  return {
    file,
    at(ms: number, change: { version: string; problem?: string }) {
      changes.set(ms, { problem: undefined, ...change });
    },
    options: {
      intervalMs: 1000,
      use: () => {
        file.reads.push(file.now);
        if (file.problem) throw new Refusal(file.problem);
        return `used at ${file.now} ms`;
      },
      refused: (error: unknown): error is Refusal => error instanceof Refusal,
      onRefused: (error: Refusal) => file.reported.push(error.message),
      version: () => file.version,
      sleep: async (ms: number) => {
        file.now += ms;
        Object.assign(file, changes.get(file.now));
      },
    },
  };
}

describe("whenUsable", () => {
  it("uses a usable file at once, without waiting or reporting", async () => {
    const { file, options } = scriptedFile(undefined);
    expect(await whenUsable("keys.json", options)).toBe("used at 0 ms");
    expect(file.reads).toEqual([0]);
    expect(file.reported).toEqual([]);
  });

  it("reads the file again only when it changed, reports only a new problem, and uses it once it is usable", async () => {
    const { file, at, options } = scriptedFile("not found");
    at(3000, { version: "1:10", problem: "not JSON" });
    at(5000, { version: "1:12", problem: "not JSON" });
    at(6000, { version: "2:40", problem: "every key in it is revoked" });
    at(9000, { version: "3:41" });
    expect(await whenUsable("keys.json", options)).toBe("used at 9000 ms");
    expect(file.reads).toEqual([0, 3000, 5000, 6000, 9000]);
    expect(file.reported).toEqual(["not found", "not JSON", "every key in it is revoked"]);
  });

  it("reports a problem again when it comes back after another one", async () => {
    const { file, at, options } = scriptedFile("not found");
    at(1000, { version: "1:10", problem: "not JSON" });
    at(2000, { version: "ENOENT", problem: "not found" });
    at(3000, { version: "2:41" });
    await whenUsable("keys.json", options);
    expect(file.reported).toEqual(["not found", "not JSON", "not found"]);
  });

  it("throws what is not the file's refusal (a bug), without waiting", async () => {
    const { file, options } = scriptedFile(undefined);
    const bug = new TypeError("bug");
    await expect(
      whenUsable("keys.json", {
        ...options,
        use: () => {
          throw bug;
        },
      }),
    ).rejects.toBe(bug);
    expect(file.now).toBe(0);
  });
});
