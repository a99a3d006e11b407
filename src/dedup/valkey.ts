import { Cluster, type Redis, Valkey } from "iovalkey";
import type { Config } from "../config.ts";

export type ValkeyClient = Redis | Cluster;

/**
 * The longest a command waits for Valkey's answer, and the longest a connection with commands outstanding may
 * stay silent before it is replaced. Without them a connection whose packets are dropped (a partition, a NAT or
 * firewall that lost its state) holds every command until the kernel gives up on it, about 15 minutes: the worker
 * would stall with its batch in hand. A claim call of a full batch takes well under a second; one that takes 5 s
 * leaves no room for the insert before the claims can be taken over (15 s) anyway.
 */
export const VALKEY_COMMAND_TIMEOUT_MS = 5_000;

/** Fail fast (rejected at once while disconnected, never queued; bounded while connected); callers retry. */
const failFast = {
  maxRetriesPerRequest: 0,
  commandTimeout: VALKEY_COMMAND_TIMEOUT_MS,
  socketTimeout: VALKEY_COMMAND_TIMEOUT_MS,
};

/**
 * The Valkey client of a process: one server, or a Valkey Cluster when VALKEY_CLUSTER=true (VALKEY_URL then
 * lists some of its nodes). Both fail fast while Valkey is away or silent instead of queueing commands: callers
 * retry, and a silent connection is replaced by a new one.
 */
export function createValkey(config: Config): ValkeyClient {
  const urls = config.VALKEY_URL.split(",").map((url) => url.trim());
  if (!config.VALKEY_CLUSTER) {
    return new Valkey(urls[0] ?? "", { enableOfflineQueue: false, ...failFast });
  }
  const nodes = urls.map((url) => {
    const { hostname, port } = new URL(url);
    return { host: hostname, port: Number(port || 6379) };
  });
  const { username, password, protocol } = new URL(urls[0] ?? "");
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    redisOptions: {
      ...failFast,
      ...(protocol === "rediss:" ? { tls: {} } : {}),
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
    },
  });
}
