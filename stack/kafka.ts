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

export interface KafkaEngine {
  brokers: string[];
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** Starts a single-node Apache Kafka broker in KRaft mode on loopback, formatting its storage once. */
export async function startKafka(options: KafkaOptions): Promise<KafkaEngine> {
  await assertPortFree("kafka", options.port);
  await assertPortFree("kafka", options.controllerPort);
  await requireJava(options.logFile);
  await resolveJars(options.logFile);
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

function engine(options: KafkaOptions, proc: EngineProcess): KafkaEngine {
  return {
    brokers: [`127.0.0.1:${options.port}`],
    stop: () => proc.stop(30_000),
    kill: () => proc.kill(),
  };
}

function jvmArgs(options: KafkaOptions): string[] {
  const heap = options.heap ?? "1g";
  return [
    `-Xmx${heap}`,
    `-Xms${heap}`,
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
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

function writeServerProperties(options: KafkaOptions): string {
  mkdirSync(options.dataDir, { recursive: true });
  const file = join(options.dataDir, "server.properties");
  const lines = [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@127.0.0.1:${options.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${options.port},CONTROLLER://127.0.0.1:${options.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${options.port}`,
    "controller.listener.names=CONTROLLER",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name=PLAINTEXT",
    `log.dirs=${join(options.dataDir, "logs")}`,
    // Topics are created by the app with the partition count it is configured for.
    "auto.create.topics.enable=false",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=4",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
  ];
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

async function formatStorageOnce(options: KafkaOptions, properties: string): Promise<void> {
  if (existsSync(join(options.dataDir, "logs", "meta.properties"))) return;
  // Like Kafka's own Uuid: an id starting with "-" would be read as a command-line option.
  let clusterId = randomBytes(16).toString("base64url");
  while (clusterId.startsWith("-")) clusterId = randomBytes(16).toString("base64url");
  try {
    await run("java", [
      ...jvmArgs({ ...options, heap: "256m" }),
      "kafka.tools.StorageTool",
      "format",
      "-t",
      clusterId,
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
