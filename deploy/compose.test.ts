import { execFile } from "node:child_process";
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

it.each(COMPOSE_FILES)("docker-compose config -q accepts %s", async (file) => {
  const outcome = await run(dockerCompose, ["-f", file, "config", "-q"], { cwd: repoRoot }).then(
    () => ({ code: 0, output: "" }),
    (err: NodeJS.ErrnoException & { stderr?: string }) => ({ code: err.code, output: err.stderr || err.message }),
  );
  expect(outcome.code, outcome.output).toBe(0);
});

interface Service {
  build?: { context: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
}

it.each(COMPOSE_FILES)("%s builds the repository's image and runs each process of it by its command", async (file) => {
  // The file as docker-compose resolves it: anchors merged, build contexts absolute.
  const { stdout } = await run(dockerCompose, ["-f", file, "config"], { cwd: repoRoot });
  const services = (parse(stdout) as { services: Record<string, Service> }).services;
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
