import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { ensureChromium } from "../../stack/chromium.ts";

/**
 * A desktop Chrome's user agent. The API counts a headless browser's impressions as invalid traffic (headless),
 * so the browser tests that check anything else look like a person's browser: this user agent, and no
 * navigator.webdriver.
 */
export const DESKTOP_USER_AGENT =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export interface LaunchOptions {
  /**
   * As Chromium runs headless by default: its HeadlessChrome user agent and navigator.webdriver true (the
   * invalid-traffic tests). Otherwise it looks like a desktop browser (DESKTOP_USER_AGENT, no webdriver).
   */
  asHeadless?: boolean;
}

/** Headless Debian chromium, driven by playwright-core (its own browser builds cannot be downloaded here). */
export async function launchBrowser({ asHeadless = false }: LaunchOptions = {}): Promise<Browser> {
  const desktop = [`--user-agent=${DESKTOP_USER_AGENT}`, "--disable-blink-features=AutomationControlled"];
  return chromium.launch({
    executablePath: await ensureChromium(),
    args: [...CHROMIUM_ARGS, ...(asHeadless ? [] : desktop)],
  });
}

/**
 * Chromium opening `url` with no DevTools attached, as a person's browser would: playwright-core attaches to
 * every page, and Chromium does not prerender while a client is attached that way (PrerenderingDisabledByDevTools),
 * so Speculation Rules can only be tested so. The page drives itself; kill it with `close`.
 */
export async function openUnattached(url: string, userAgent = DESKTOP_USER_AGENT): Promise<{ close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "chromium-"));
  const child: ChildProcess = spawn(
    await ensureChromium(),
    [...CHROMIUM_ARGS, `--user-data-dir=${profile}`, `--user-agent=${userAgent}`, url],
    { stdio: "ignore" },
  );
  return {
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * One browser for the calling test file, launched before its first test and closed after its last.
 * Call it at the file's top level; the getter works inside tests and hooks.
 */
export function useBrowser(options: LaunchOptions = {}): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser(options);
  }, 600_000); // the first run on a fresh machine may apt-get install chromium
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error("useBrowser: no browser yet (it is launched in beforeAll)");
    return browser;
  };
}

/**
 * Serves `html` at / on 127.0.0.1 on a port of its own: another origin, such as a publisher's page; and the
 * other pages of `pages` at their paths.
 */
export async function servePage(
  html: string,
  pages: Record<string, string> = {},
): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://host").pathname;
    const page = path === "/" ? html : pages[path];
    if (page === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // A browser may keep its connection open: close it, or close() would wait for it.
        server.closeAllConnections();
      }),
  };
}
