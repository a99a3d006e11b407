import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { KeysFileError } from "../src/auth/keys-file.ts";
import { startingKeys } from "../src/auth/keys-watcher.ts";
import { DEFAULT_KEYS_FILE } from "../src/config.ts";
import { repoRoot } from "./paths.ts";

export interface LaunchAuth {
  /** AUTH as the app gets it. */
  auth: string;
  /** API_KEYS_FILE as the app gets it: absolute, resolved from the repository root. */
  keysFile: string;
  /** Lines to print loudly at start: the API runs open because no keys file exists yet. */
  banner: string[] | undefined;
}

/**
 * How `npm start` runs the app's keys when the environment does not say (AUTH unset): on a fresh machine, where
 * the keys file does not exist, with AUTH=off and a banner saying so, so the first `npm start` works with no
 * setup; as soon as the file exists (even emptied), AUTH=required, and the API waits, closed, for a file it
 * can use rather than opening. An AUTH set in the environment is passed as it is.
 */
export function launchAuth(env: NodeJS.ProcessEnv, exists: (path: string) => boolean = existsSync): LaunchAuth {
  const keysFile = resolve(repoRoot, env.API_KEYS_FILE || DEFAULT_KEYS_FILE);
  if (env.AUTH) return { auth: env.AUTH, keysFile, banner: undefined };
  if (exists(keysFile)) return { auth: "required", keysFile, banner: undefined };
  return {
    auth: "off",
    keysFile,
    banner: [
      `KEYS ARE OFF: there is no keys file at ${keysFile}, so the API runs with AUTH=off:`,
      "every route, /stats and /metrics included, is open to anyone who can reach it.",
      "To turn keys on: npm run keys -- create --scope ingest --name NAME (and --scope query --name NAME for",
      "/stats and the dashboard), then restart npm start; from then on keys are required (AUTH=required).",
    ],
  };
}

/** Why the API would wait instead of serving on this keys file with AUTH=required (src/api/main.ts); none if it would not. */
export function keysProblem(keysFile: string): string | undefined {
  try {
    startingKeys(keysFile);
    return undefined;
  } catch (error) {
    if (error instanceof KeysFileError) return error.message;
    throw error;
  }
}
