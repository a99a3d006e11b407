import { ensureDebianPackage } from "./debian.ts";

/**
 * The path of Debian's chromium, for the browser tests (playwright-core drives it: its own browser downloads
 * are not reachable from CI). When it is missing and this runs as root, installs it with apt-get; otherwise
 * throws, saying how to install it, so that those tests fail instead of being skipped.
 */
export async function ensureChromium(): Promise<string> {
  // With recommends: its fonts make screenshots readable.
  return (await ensureDebianPackage("chromium", ["chromium"], { recommends: true })).chromium;
}

// `node stack/chromium.ts` (run by `npm test` before the suite): install it once, before test files race to.
if (import.meta.main) console.log(`[setup] chromium: ${await ensureChromium()}`);
