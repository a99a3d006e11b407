import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./paths.ts";
import { assertPortFree, EngineError, type EngineProcess, spawnLogged, waitUntilReady } from "./process.ts";

const run = promisify(execFile);
const KAFKA_VERSION = "4.1.1";
const pom = join(repoRoot, "stack/kafka/pom.xml");
const log4jConfig = join(repoRoot, "stack/kafka/log4j2.properties");
const libDir = join(repoRoot, ".cache", `kafka-${KAFKA_VERSION}`, "libs");

export interface KafkaOptions {
  port: number;
  controllerPort: number;
  dataDir: string;
  logFile: string;
  heap?: string;
}

/** A controller of the KRaft quorum: its node id and controller port on loopback. */
export interface KafkaVoter {
  id: number;
  controllerPort: number;
}

/** One combined broker+controller node of a KRaft cluster on loopback. */
export interface KafkaNodeOptions extends KafkaOptions {
  nodeId: number;
  /** Every controller of the quorum, this node included. */
  voters: KafkaVoter[];
  /** Written into the storage when it is formatted (once): every node of one cluster must share it. */
  clusterId: string;
  /** server.properties entries that replace or add to the single-node defaults. */
  properties?: Record<string, string | number>;
  /** The JVM's garbage collector and tuning flags, instead of G1 with short pauses. */
  jvmFlags?: string[];
}

export interface KafkaEngine {
  brokers: string[];
  /** SIGTERM, then SIGKILL after graceMs (30 s). */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

/** Starts a single-node Apache Kafka broker in KRaft mode on loopback, formatting its storage once. */
export async function startKafka(options: KafkaOptions): Promise<KafkaEngine> {
  return startKafkaNode({
    ...options,
    nodeId: 1,
    voters: [{ id: 1, controllerPort: options.controllerPort }],
    clusterId: newClusterId(),
  });
}

/** Starts one node of a KRaft cluster, formatting its storage once; resolves once it serves as a broker. */
export async function startKafkaNode(options: KafkaNodeOptions): Promise<KafkaEngine> {
  await assertPortFree("kafka", options.port);
  await assertPortFree("kafka", options.controllerPort);
  await installKafka(options.logFile);
  const properties = writeServerProperties(options);
  await formatStorageOnce(options, properties);

  const startedAt = existsSync(options.logFile) ? statSync(options.logFile).size : 0;
  const proc = spawnLogged("java", [...jvmArgs(options), "kafka.Kafka", properties], {
    logFile: options.logFile,
  });
  const started = async () => readFileSync(options.logFile, "utf8").slice(startedAt).includes("Kafka Server started");
  await waitUntilReady("kafka", proc, started, 90_000);
  return engine(options, proc);
}

/** Java and the broker's jars, which every node needs: resolved once, before nodes start in parallel. */
export async function installKafka(logFile: string): Promise<void> {
  await requireJava(logFile);
  await resolveJars(logFile);
}

/** Like Kafka's own Uuid: an id starting with "-" would be read as a command-line option. */
export function newClusterId(): string {
  let clusterId = randomBytes(16).toString("base64url");
  while (clusterId.startsWith("-")) clusterId = randomBytes(16).toString("base64url");
  return clusterId;
}

function engine(options: KafkaOptions, proc: EngineProcess): KafkaEngine {
  return {
    brokers: [`127.0.0.1:${options.port}`],
    stop: (graceMs = 30_000) => proc.stop(graceMs),
    kill: () => proc.kill(),
  };
}

function jvmArgs(options: KafkaNodeOptions): string[] {
  const heap = options.heap ?? "1g";
  return [
    `-Xmx${heap}`,
    `-Xms${heap}`,
    ...(options.jvmFlags ?? ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]),
    "-Djava.awt.headless=true",
    `-Dlog4j2.configurationFile=${log4jConfig}`,
    "-cp",
    `${libDir}/*`,
  ];
}

async function requireJava(logFile: string): Promise<void> {
  try {
    await run("java", ["-version"]);
  } catch {
    throw new EngineError(
      "kafka",
      "java not found on PATH: install a JDK 17+ (apt-get install openjdk-17-jre-headless)",
      logFile,
    );
  }
}

/** The broker's jars come from Maven Central through mvn, into a cache outside git, once. */
async function resolveJars(logFile: string): Promise<void> {
  const marker = join(libDir, ".complete");
  if (existsSync(marker)) return;
  console.error(`[stack] kafka: resolving Apache Kafka ${KAFKA_VERSION} jars from Maven Central (once) ...`);
  const args = [
    "-q",
    "-B",
    "-f",
    pom,
    "dependency:copy-dependencies",
    `-DoutputDirectory=${libDir}`,
    "-DincludeScope=runtime",
  ];
  try {
    await run("mvn", args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string };
    const cause =
      e.code === "ENOENT"
        ? "mvn not found on PATH: install Maven (apt-get install maven)"
        : `mvn failed: ${(e.stdout ?? e.message).trim().split("\n").slice(-3).join(" ")}`;
    throw new EngineError("kafka", cause, logFile);
  }
  writeFileSync(marker, `${new Date().toISOString()}\n`);
}

function writeServerProperties(options: KafkaNodeOptions): string {
  mkdirSync(options.dataDir, { recursive: true });
  const file = join(options.dataDir, "server.properties");
  const voters = options.voters.map((v) => `${v.id}@127.0.0.1:${v.controllerPort}`).join(",");
  const properties: Record<string, string | number> = {
    "process.roles": "broker,controller",
    "node.id": options.nodeId,
    "controller.quorum.voters": voters,
    listeners: `PLAINTEXT://127.0.0.1:${options.port},CONTROLLER://127.0.0.1:${options.controllerPort}`,
    "advertised.listeners": `PLAINTEXT://127.0.0.1:${options.port}`,
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": join(options.dataDir, "logs"),
    // Topics are created by the app with the partition count it is configured for.
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 4,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "group.initial.rebalance.delay.ms": 0,
    ...options.properties,
  };
  const lines = Object.entries(properties).map(([key, value]) => `${key}=${value}`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

async function formatStorageOnce(options: KafkaNodeOptions, properties: string): Promise<void> {
  if (existsSync(join(options.dataDir, "logs", "meta.properties"))) return;
  try {
    await run("java", [
      ...jvmArgs({ ...options, heap: "256m" }),
      "kafka.tools.StorageTool",
      "format",
      "-t",
      options.clusterId,
      "-c",
      properties,
    ]);
  } catch (err) {
    throw new EngineError(
      "kafka",
      `formatting storage failed: ${(err as Error).message.split("\n")[0]}`,
      options.logFile,
    );
  }
}
