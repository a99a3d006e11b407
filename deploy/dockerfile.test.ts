import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../stack/paths.ts";
import { ensureShellcheck } from "../stack/shellcheck.ts";
import { lintDockerfile, runScripts } from "./dockerfile-lint.ts";

const run = promisify(execFile);

const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");

/** A small image that passes every rule; each case below breaks one. */
const GOOD = [
  "FROM node:24-bookworm-slim AS deps",
  "WORKDIR /app",
  "COPY package.json package-lock.json ./",
  "RUN npm install --omit=dev --no-save",
  "FROM node:24-bookworm-slim",
  "WORKDIR /app",
  "COPY --from=deps /app/node_modules ./node_modules",
  "COPY src ./src",
  "USER node",
  'ENTRYPOINT ["node", "src/api/main.ts"]',
].join("\n");

describe("lintDockerfile", () => {
  it("finds nothing wrong with the project's Dockerfile", () => {
    expect(lintDockerfile(dockerfile)).toEqual([]);
  });

  it("finds nothing wrong with a small good image", () => {
    expect(lintDockerfile(GOOD)).toEqual([]);
  });

  it.each([
    ["a malformed instruction", GOOD.replace("COPY src ./src", "COPY src"), "line 8: COPY requires at least two"],
    ["an unknown instruction", `${GOOD}\nEXPOSES 3000`, "line 11: Unknown instruction: EXPOSES"],
    ["a port that is not one", `${GOOD}\nEXPOSE http`, "line 11: Invalid containerPort: http"],
    ["two entrypoints", `${GOOD}\nENTRYPOINT ["node"]`, "line 10: There can only be one ENTRYPOINT"],
    ["another Node", GOOD.replace("FROM node:24-bookworm-slim\n", "FROM node:22-slim\n"), "line 5: FROM node:22-slim"],
    ["an untagged base", GOOD.replace(/^FROM node:24-bookworm-slim AS/, "FROM node AS"), "line 1: FROM node:"],
    ["latest", GOOD.replace(/^FROM node:24-bookworm-slim AS/, "FROM node:latest AS"), "line 1: FROM node:latest"],
    ["dev dependencies", GOOD.replace("npm install --omit=dev --no-save", "npm ci"), "line 4: npm ci: installs dev"],
    ["no USER", GOOD.replace("USER node\n", ""), "the final stage has no USER"],
    ["USER root", GOOD.replace("USER node", "USER root"), "line 9: USER root: the processes would run as root"],
    ["USER 0:0", GOOD.replace("USER node", "USER 0:0"), "line 9: USER 0: the processes would run as root"],
    [
      "a USER only in the first stage",
      GOOD.replace("USER node\n", "").replace("WORKDIR /app", "USER node\nWORKDIR /app"),
      "the final stage has no USER",
    ],
    [
      "a shell-form entrypoint",
      GOOD.replace('ENTRYPOINT ["node", "src/api/main.ts"]', "ENTRYPOINT node src/api/main.ts"),
      "line 10: ENTRYPOINT in shell form",
    ],
    ["a shell-form CMD", `${GOOD}\nCMD node src/worker/main.ts`, "line 11: CMD in shell form"],
    ["ADD", GOOD.replace("COPY src ./src", "ADD src ./src"), "line 8: ADD fetches"],
  ])("reports %s", (_, text, problem) => {
    expect(lintDockerfile(text).join("\n")).toContain(problem);
  });
});

describe("the Dockerfile's production install", () => {
  it("skips install scripts (--ignore-scripts), and no package the lock installs for production has one", () => {
    expect(dockerfile).toMatch(/RUN npm install --omit=dev [^\n]*--ignore-scripts/);
    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript && !p.dev);
    expect(withScripts.map(([path]) => path)).toEqual([]);
    // The check can see one: the dev dependency `node` (npm start's Node) installs its binary in a preinstall script.
    expect(lock.packages["node_modules/node"]?.hasInstallScript).toBe(true);
  });
});

describe("runScripts", () => {
  it("gives each shell-form RUN's script as /bin/sh gets it, and no exec-form RUN", () => {
    const text = [
      "FROM node:24-bookworm-slim",
      "RUN --mount=type=cache,target=/root/.npm npm install \\",
      "  # dependencies only",
      "  --omit=dev",
      'RUN ["node", "--version"]',
      "RUN mkdir /keys",
    ].join("\n");
    expect(runScripts(text)).toEqual([
      { line: 2, script: "npm install \\\n  --omit=dev" },
      { line: 6, script: "mkdir /keys" },
    ]);
  });
});

describe("shellcheck", () => {
  let shellcheck: string;
  // An install (apt-get) when missing takes a while.
  beforeAll(async () => {
    shellcheck = await ensureShellcheck();
  }, 300_000);

  /** shellcheck's findings on a POSIX sh script (any level, style included), or "" for none. */
  const check = (file: string) =>
    run(shellcheck, ["--shell=sh", "--severity=style", file]).then(
      () => "",
      (err: { stdout?: string; message: string }) => err.stdout || err.message,
    );

  /** shellcheck's findings on each shell-form RUN of a Dockerfile, `line N: ...`, or "" for none. */
  async function checkRuns(text: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "dockerfile-run-"));
    try {
      const findings = await Promise.all(
        runScripts(text).map(async ({ line, script }) => {
          const file = join(dir, `line-${line}.sh`);
          writeFileSync(file, `#!/bin/sh\n${script}\n`);
          const found = await check(file);
          return found && `line ${line}: ${found}`;
        }),
      );
      return findings.filter(Boolean).join("\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("finds nothing in the Dockerfile's RUN commands", async () => {
    expect(runScripts(dockerfile).length).toBeGreaterThan(0);
    expect(await checkRuns(dockerfile)).toBe("");
  });

  it("would report a RUN command's unquoted expansion, by the Dockerfile's line", async () => {
    const found = await checkRuns(`${GOOD}\nRUN mkdir -p $HOME/cache && cd $HOME/cache`);
    expect(found).toMatch(/^line 11: /);
    expect(found).toContain("SC2086");
  });

  it("finds nothing in the image's entrypoint", async () => {
    expect(await check(join(repoRoot, "deploy/entrypoint.sh"))).toBe("");
  });

  it("would report the entrypoint's unquoted expansion", async () => {
    const dir = mkdtempSync(join(tmpdir(), "entrypoint-"));
    try {
      const bad = join(dir, "entrypoint.sh");
      writeFileSync(bad, readFileSync(join(repoRoot, "deploy/entrypoint.sh"), "utf8").replace('"$@"', "$@"));
      expect(await check(bad)).toContain("SC2068");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
