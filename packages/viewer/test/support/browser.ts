import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromiumPath as installedChromium, launchChromium } from "../../scripts/chromium.mjs";

/** Screenshots and numbers the browser tests keep (gitignored): packages/viewer/test-artifacts/. */
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/**
 * Debian's Chromium, installed by scripts/browser.sh when missing. Undefined when it cannot be had; with
 * CI=true that is a failure, not a skip.
 */
export function chromiumPath(): string | undefined {
  try {
    return installedChromium();
  } catch (error) {
    if (process.env.CI === "true") throw error;
    return undefined;
  }
}

export type Browser = Awaited<ReturnType<typeof launchChromium>>;

export function launchBrowser(
  executablePath: string,
  colorScheme: "light" | "dark" = "light",
): Promise<Browser> {
  return launchChromium({ executablePath, colorScheme });
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
