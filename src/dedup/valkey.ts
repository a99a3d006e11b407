import { Cluster, type Redis, Valkey } from "iovalkey";
import type { Config } from "../config.ts";

export type ValkeyClient = Redis | Cluster;

/**
 * The Valkey client of a process: one server, or a Valkey Cluster when VALKEY_CLUSTER=true (VALKEY_URL then
 * lists some of its nodes). Both fail fast while Valkey is away instead of queueing commands: callers retry.
 */
export function createValkey(config: Config): ValkeyClient {
  const urls = config.VALKEY_URL.split(",").map((url) => url.trim());
  if (!config.VALKEY_CLUSTER) {
    return new Valkey(urls[0] ?? "", { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  }
  const nodes = urls.map((url) => {
    const { hostname, port } = new URL(url);
    return { host: hostname, port: Number(port || 6379) };
  });
  const { username, password, protocol } = new URL(urls[0] ?? "");
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    redisOptions: {
      maxRetriesPerRequest: 0,
      ...(protocol === "rediss:" ? { tls: {} } : {}),
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
    },
  });
}
