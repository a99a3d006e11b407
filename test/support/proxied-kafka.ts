import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { newClusterId, startKafkaNode } from "../../stack/kafka.ts";
import { LEAN_JVM } from "../../stack/kafka-cluster.ts";
import { repoRoot } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

/** A client listener of the broker, reached only through its proxy. */
export interface ProxiedListener {
  /** Bootstrap address (the proxy's): the broker advertises the same one, so every connection goes through it. */
  brokers: string[];
  proxy: TcpProxy;
}

export interface ProxiedKafka {
  /** The listener the API's producer uses. */
  api: ProxiedListener;
  /** The listener the worker's consumer (and its other Kafka clients) use. */
  worker: ProxiedListener;
  stop(): Promise<void>;
}

/**
 * A single-node Kafka broker of the calling test's own with two client listeners, `API` and `WORKER`, each
 * advertised at a TCP proxy's address: clients connect to the addresses the broker advertises after bootstrap,
 * so a proxy in front of the bootstrap port alone would be bypassed. Cutting one proxy cuts every connection of
 * the clients using that listener and none of the others'. The broker talks to itself on a third listener and
 * to its controller on a fourth, neither proxied. Its logs stay in `.data/test/`, its data is removed at stop.
 */
export async function startProxiedKafka(): Promise<ProxiedKafka> {
  const dir = join(repoRoot, ".data/test", `kafka-proxied-${randomBytes(4).toString("hex")}`);
  const [internal, controller, apiPort, workerPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const host = "127.0.0.1";
  const apiProxy = await startTcpProxy({ host, port: apiPort });
  const workerProxy = await startTcpProxy({ host, port: workerPort });
  const kafka = await startKafkaNode({
    nodeId: 1,
    port: internal,
    controllerPort: controller,
    voters: [{ id: 1, controllerPort: controller }],
    clusterId: newClusterId(),
    dataDir: join(dir, "data"),
    logFile: join(dir, "kafka.log"),
    heap: "320m",
    jvmFlags: LEAN_JVM,
    properties: {
      listeners: [
        `INTERNAL://${host}:${internal}`,
        `API://${host}:${apiPort}`,
        `WORKER://${host}:${workerPort}`,
        `CONTROLLER://${host}:${controller}`,
      ].join(","),
      "advertised.listeners": [
        `INTERNAL://${host}:${internal}`,
        `API://${apiProxy.address}`,
        `WORKER://${workerProxy.address}`,
      ].join(","),
      "listener.security.protocol.map": "INTERNAL:PLAINTEXT,API:PLAINTEXT,WORKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
      "inter.broker.listener.name": "INTERNAL",
    },
  });
  return {
    api: { brokers: [apiProxy.address], proxy: apiProxy },
    worker: { brokers: [workerProxy.address], proxy: workerProxy },
    async stop() {
      await apiProxy.close();
      await workerProxy.close();
      // Its data is thrown away: no orderly shutdown needed.
      await kafka.kill();
      rmSync(join(dir, "data"), { recursive: true, force: true });
    },
  };
}
