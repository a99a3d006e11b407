import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  currentPidSpace,
  holderPrefix,
  isProvablyDead,
  type LeaseHolder,
  parseHolder,
  processIsAlive,
} from "./lease-holder.ts";

const holder: LeaseHolder = { pidSpace: "boot-1/4026531836", pid: 4242, token: "a1b2c3", state: "claimed" };
const value = (h: LeaseHolder) => `${holderPrefix(h)}${h.state}`;
const here = { pidSpace: "boot-1/4026531836", pid: 1000 };
const dead = () => false;

describe("the holder named by an owner lease", () => {
  it("reads back the lease value, state and all, and nothing else", () => {
    expect(value(holder)).toBe("boot-1/4026531836|4242|a1b2c3|claimed");
    expect(parseHolder(value(holder))).toEqual(holder);
    expect(parseHolder(value({ ...holder, state: "idle" }))?.state).toBe("idle");
    expect(parseHolder(value({ ...holder, state: "until-1796122864177" }))?.state).toBe("until-1796122864177");
    for (const bad of ["", "x|1|t", "x|one|t|idle", "x|1|t|busy", "x|1||idle", "x|1|t|idle|more", "x|1|t|until-"]) {
      expect(parseHolder(bad)).toBeUndefined();
    }
  });

  it("is provably dead only in this pid space, with another pid that no process has", () => {
    expect(isProvablyDead(holder, here, dead)).toBe(true);
    expect(isProvablyDead(holder, here, () => true)).toBe(false);
    // Another host or container: its pid says nothing here.
    expect(isProvablyDead({ ...holder, pidSpace: "boot-2/4026531836" }, here, dead)).toBe(false);
    expect(isProvablyDead({ ...holder, pidSpace: "-" }, { ...here, pidSpace: "-" }, dead)).toBe(false);
    // This very process: another lease of it.
    expect(isProvablyDead({ ...holder, pid: here.pid }, here, dead)).toBe(false);
  });

  it("tells a running process from an exited one", () => {
    expect(processIsAlive(process.pid)).toBe(true);
    const exited = spawnSync(process.execPath, ["-e", ""]);
    expect(processIsAlive(exited.pid as number)).toBe(false);
  });

  it.runIf(process.platform === "linux")("names this kernel boot and pid namespace on Linux", () => {
    expect(currentPidSpace()).toMatch(/^[0-9a-f-]{36}\/\d+$/);
  });
});
