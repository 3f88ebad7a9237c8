import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";

/** Screenshots the browser tests keep (gitignored): packages/viewer/test-artifacts/. */
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/**
 * Debian's Chromium, installed by scripts/browser.sh when missing (Playwright's own download cannot work on
 * these machines). Returns undefined when it cannot be had; with CI=true that is a failure, not a skip.
 */
export function chromiumPath(): string | undefined {
  const script = fileURLToPath(new URL("../../../../scripts/browser.sh", import.meta.url));
  try {
    return execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  } catch (error) {
    if (process.env.CI === "true") throw error;
    return undefined;
  }
}

/** Flags Chromium needs as root on a closed network (no sandbox, no GPU, no calls home). */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile (Playwright takes one only through a persistent context). */
export async function launchBrowser(
  executablePath: string,
  colorScheme: "light" | "dark" = "light",
): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "streamll-viewer-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 860 },
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

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
