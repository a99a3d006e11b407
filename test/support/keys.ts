import { spawnSync } from "node:child_process";
import { Keyring } from "../../src/auth/keyring.ts";
import type { KeysFile } from "../../src/auth/keys-file.ts";
import type { Config } from "../../src/config.ts";
import { createGate, type Gate } from "../../src/http/access-hooks.ts";
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

/** The gate of `config` over the keys of `file`, as the API's main.ts builds it: no keys at all with AUTH=off. */
export function gateOver(config: Config, file: KeysFile): Gate {
  const keyring = new Keyring(file);
  return createGate(config, config.AUTH === "off" ? undefined : { current: () => keyring });
}
