import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";
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
