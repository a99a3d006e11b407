import { spawnSync } from "node:child_process";
import { repoRoot } from "../../stack/paths.ts";

/** `npm run keys -- …` (the real CLI) on `file`; returns its last line, which for `create` is the new key. */
export function runKeysCli(file: string, ...args: string[]): string {
  const run = spawnSync(process.execPath, ["src/auth/cli.ts", ...args], {
    cwd: repoRoot,
    env: { ...process.env, API_KEYS_FILE: file },
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`keys ${args.join(" ")} failed: ${run.stderr}`);
  return run.stdout.trimEnd().split("\n").at(-1) ?? "";
}
