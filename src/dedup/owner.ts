import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Config } from "../config.ts";

/** A claims owner no other process uses: this host, this process and a random tag. */
export function uniqueOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

/**
 * The name of this worker's process slot, the same after a restart: WORKER_ID, or the host and pm2's instance
 * number. Valid as a Kafka group.instance.id (no `:`), so it never equals a uniqueOwner().
 */
export function slotIdentity(config: Pick<Config, "WORKER_ID" | "NODE_APP_INSTANCE">, host = hostname()): string {
  return config.WORKER_ID ?? `${host.replace(/[^A-Za-z0-9._-]/g, "_")}-${config.NODE_APP_INSTANCE}`;
}
