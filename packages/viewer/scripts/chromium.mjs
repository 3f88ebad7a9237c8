// Debian's Chromium for the browser tests, the benchmark and the screenshot: installed by scripts/browser.sh
// when missing (Playwright's own browser download cannot work on these machines), launched with the flags it
// needs as root on a closed network.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const browserScript = fileURLToPath(new URL("../../../scripts/browser.sh", import.meta.url));

/** No sandbox (root), no GPU, and no calls home (the network is closed; retries would flood it). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The browser's path, installing it first when missing. Throws when it cannot be had. */
export function chromiumPath() {
  return execFileSync("bash", [browserScript], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}

/**
 * Launches Chromium with a fresh profile (Playwright takes one only through a persistent context); `close()`
 * also removes the profile.
 */
export async function launchChromium({
  executablePath = chromiumPath(),
  colorScheme = "light",
  width = 1400,
  height = 860,
} = {}) {
  const profile = mkdtempSync(join(tmpdir(), "streamll-viewer-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width, height },
    colorScheme,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
