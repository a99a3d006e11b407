import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";

/** A registry with Node's default process metrics (CPU, memory, event loop, GC). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** A health probe served at GET /healthz beside /metrics: 200 when ok, 503 otherwise, with `body` as JSON. */
export type HealthProbe = () => { ok: boolean; body: unknown };

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics on a port of this process's own: pm2 runs several API processes on one
 * shared port, where a scrape would reach any one of them, so each process is scraped on its own port. With
 * `health`, GET /healthz answers it there too (the workers serve no other HTTP).
 */
export async function serveMetrics(
  registry: Registry,
  host: string,
  port: number,
  health?: HealthProbe,
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    const path = request.method === "GET" ? request.url?.split("?")[0] : undefined;
    if (health && path === "/healthz") {
      const { ok, body } = health();
      response.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(body));
      return;
    }
    if (path !== "/metrics") {
      const routes = health ? "GET /metrics or GET /healthz" : "GET /metrics";
      response.writeHead(404, { "content-type": "text/plain" }).end(`see ${routes}\n`);
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { "content-type": "text/plain" }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
