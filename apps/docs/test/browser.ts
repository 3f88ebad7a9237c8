// Headless Chromium for the site's tests: Debian's `chromium` (scripts/browser.sh installs it when missing and
// prints its path) driven by playwright-core. Playwright's own browser download cannot work on these
// machines. A missing browser is an error here, never a skip.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { repoRoot } from "../.vitepress/site";

// Root needs --no-sandbox; the rest keeps Chromium off the (closed) network.
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const executablePath = execFileSync("bash", [join(repoRoot, "scripts", "browser.sh")], {
    encoding: "utf8",
  }).trim();
  const userDataDir = mkdtempSync(join(tmpdir(), "streamll-docs-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: flags,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
