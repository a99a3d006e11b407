import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { ensureChromium } from "../../stack/chromium.ts";

/** Headless Debian chromium, driven by playwright-core (its own browser builds cannot be downloaded here). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: await ensureChromium(),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * One browser for the calling test file, launched before its first test and closed after its last.
 * Call it at the file's top level; the getter works inside tests and hooks.
 */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 600_000); // the first run on a fresh machine may apt-get install chromium
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error("useBrowser: no browser yet (it is launched in beforeAll)");
    return browser;
  };
}

/** Serves `html` at / on 127.0.0.1 on a port of its own: another origin, such as a publisher's page. */
export async function servePage(html: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (new URL(req.url ?? "/", "http://host").pathname !== "/") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
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
