import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { EngineError } from "./process.ts";

const run = promisify(execFile);

/**
 * The path of Debian's chromium, for the browser tests of the page tag (playwright-core drives it: its own
 * browser downloads are not reachable from CI). When it is missing and this runs as root, installs it with
 * apt-get; otherwise throws, saying how to install it, so that those tests fail instead of being skipped.
 */
export async function ensureChromium(): Promise<string> {
  const found = findChromium();
  if (found) return found;
  if (process.getuid?.() === 0) {
    console.error("[stack] chromium: not found; installing Debian's chromium ...");
    try {
      await run("apt-get", ["update", "-qq"]);
      await run("apt-get", ["install", "-y", "-qq", "chromium"], {
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch (err) {
      throw new EngineError("chromium", `apt-get install chromium failed: ${(err as Error).message.split("\n")[0]}`);
    }
    const installed = findChromium();
    if (installed) return installed;
    throw new EngineError("chromium", "apt-get installed chromium, yet it is not at /usr/bin/chromium nor on PATH");
  }
  throw new EngineError(
    "chromium",
    "not at /usr/bin/chromium nor on PATH: install it (apt-get install chromium), or run as root to have it installed",
  );
}

/** An absolute path: playwright-core does not look the executable up on PATH. */
function findChromium(): string | undefined {
  const dirs = ["/usr/bin", ...(process.env.PATH ?? "").split(delimiter).filter(Boolean)];
  return dirs.map((dir) => join(dir, "chromium")).find(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// `node stack/chromium.ts` (run by `npm test` before the suite): install it once, before test files race to.
if (import.meta.main) console.log(`[setup] chromium: ${await ensureChromium()}`);
