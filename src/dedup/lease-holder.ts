import { readFileSync, readlinkSync } from "node:fs";

/**
 * `claimed`: the holder claimed ids, and an insert of them may be on its way to ClickHouse; `idle`: every insert it
 * sent was answered; `until-<ms>`: it took the name from a dead holder whose insert may land until then (Valkey's
 * clock) and has not claimed since.
 */
export type LeaseState = "claimed" | "idle" | `until-${number}`;

/** The process holding an owner lease, as the lease's value names it: `pidSpace|pid|token|state`. */
export interface LeaseHolder {
  /** Where the pid means something (this kernel's boot and pid namespace); `-` where it cannot be told. */
  pidSpace: string;
  pid: number;
  /** Random per acquisition: two leases of one process differ. */
  token: string;
  state: LeaseState;
}

/** The value without its state (the lease scripts append it): they recognise their holder by it whatever the state. */
export function holderPrefix({ pidSpace, pid, token }: Omit<LeaseHolder, "state">): string {
  return `${pidSpace}|${pid}|${token}|`;
}

export function parseHolder(value: string): LeaseHolder | undefined {
  const match = /^([^|]+)\|(\d+)\|([^|]+)\|(claimed|idle|until-\d+)$/.exec(value);
  if (!match) return undefined;
  const [, pidSpace = "", pid = "", token = "", state = ""] = match;
  return { pidSpace, pid: Number(pid), token, state: state as LeaseState };
}

/**
 * Whether the holder is provably gone: it ran in this process's pid space and no process has its pid now. A
 * holder elsewhere (another host or container) cannot be checked; one with this process's own pid is another
 * lease of this process (or a reuse of a dead one's pid that cannot be told apart): both count as alive.
 */
export function isProvablyDead(
  holder: LeaseHolder,
  here: { pidSpace: string; pid: number },
  isAlive: (pid: number) => boolean,
): boolean {
  if (holder.pidSpace === "-" || holder.pidSpace !== here.pidSpace || holder.pid === here.pid) return false;
  return !isAlive(holder.pid);
}

/** `kill(pid, 0)`: only ESRCH proves there is no such process (EPERM means one exists, of another user). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Linux: the kernel's boot id and the inode of this process's pid namespace, which together say where a pid
 * means the same process. `-` elsewhere: then no holder is ever proved dead.
 */
export function currentPidSpace(): string {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const namespace = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
    return boot && namespace ? `${boot}/${namespace}` : "-";
  } catch {
    return "-";
  }
}
