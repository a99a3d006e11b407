import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";
import { parse } from "yaml";
import { ensureDockerCompose } from "../stack/docker-compose.ts";
import { repoRoot } from "../stack/paths.ts";

const run = promisify(execFile);

/** No Docker engine runs here: Debian's docker-compose validates a file without one. */
const COMPOSE_FILES = ["docker-compose.yml", "deploy/clickhouse-cluster/docker-compose.yml"];

let dockerCompose: string;
// An install (apt-get) when missing takes a while.
beforeAll(async () => {
  dockerCompose = await ensureDockerCompose();
}, 300_000);

/** `docker-compose -f file config -q`, paths in it taken from the repository: its exit code and what it said. */
const configQuiet = (file: string) =>
  run(dockerCompose, ["--project-directory", repoRoot, "-f", file, "config", "-q"], { cwd: repoRoot }).then(
    () => ({ code: 0, output: "" }),
    (err: NodeJS.ErrnoException & { stderr?: string }) => ({ code: err.code, output: err.stderr || err.message }),
  );

it.each(COMPOSE_FILES)("docker-compose config -q accepts %s", async (file) => {
  const outcome = await configQuiet(file);
  expect(outcome.code, outcome.output).toBe(0);
});

it.each([
  ["an option docker-compose does not know", "    restart: unless-stopped\n", "    restarts: unless-stopped\n"],
  ["a port that is not one", '["127.0.0.1:9090:9090"]', '["127.0.0.1:9090:http"]'],
])("docker-compose config -q refuses docker-compose.yml with %s", async (_, from, to) => {
  const text = readFileSync(join(repoRoot, "docker-compose.yml"), "utf8");
  expect(text).toContain(from);
  const dir = mkdtempSync(join(tmpdir(), "compose-"));
  try {
    const broken = join(dir, "docker-compose.yml");
    writeFileSync(broken, text.replace(from, to));
    const outcome = await configQuiet(broken);
    expect(outcome.code, outcome.output).not.toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Service {
  build?: { context: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  volumes?: string[];
}

/** docker-compose.yml resolved by docker-compose: anchors merged, build contexts and bind mounts absolute. */
async function resolvedServices(file: string): Promise<Record<string, Service>> {
  const { stdout } = await run(dockerCompose, ["-f", file, "config"], { cwd: repoRoot });
  return (parse(stdout) as { services: Record<string, Service> }).services;
}

it("docker-compose.yml's Prometheus loads a configuration file of deploy/prometheus/, through its bind mount", async () => {
  const prometheus = (await resolvedServices("docker-compose.yml")).prometheus;
  const configFile = prometheus?.command?.find((a) => a.startsWith("--config.file="))?.split("=")[1] ?? "";
  const mounts = (prometheus?.volumes ?? []).map((v) => v.split(":")).filter(([source]) => source?.startsWith("/"));
  const [source = "", target = ""] = mounts.find(([, target = ""]) => configFile.startsWith(`${target}/`)) ?? [];
  expect(source).toBe(join(repoRoot, "deploy/prometheus"));
  expect(existsSync(join(source, posix.relative(target, configFile))), configFile).toBe(true);
});

it.each(COMPOSE_FILES)("%s builds the repository's image and runs each process of it by its command", async (file) => {
  const services = await resolvedServices(file);
  for (const [name, command] of [
    ["ingest", ["ingest"]],
    ["worker", ["worker"]],
    ["query", ["query"]],
    ["keys", ["list"]],
  ] as const) {
    expect(services[name]?.build?.context, name).toBe(repoRoot.replace(/\/$/, ""));
    expect(services[name]?.image, name).toBe("impression-pipeline:local");
    expect(services[name]?.command, name).toEqual(command);
  }
  expect(services.keys?.entrypoint).toEqual(["/app/deploy/entrypoint.sh", "keys"]);
  // No service installs or runs the app from a plain Node image any more.
  expect(Object.values(services).filter((s) => s.image?.startsWith("node:"))).toEqual([]);
});
