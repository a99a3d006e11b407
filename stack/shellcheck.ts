import { ensureDebianPackage } from "./debian.ts";

/** Debian's shellcheck, to lint the image's entrypoint (deploy/entrypoint.sh). */
export async function ensureShellcheck(): Promise<string> {
  return (await ensureDebianPackage("shellcheck", ["shellcheck"])).shellcheck;
}

// `node stack/shellcheck.ts` (run by `npm test` before the suite): install it once, before the tests need it.
if (import.meta.main) console.log(`[setup] shellcheck: ${await ensureShellcheck()}`);
