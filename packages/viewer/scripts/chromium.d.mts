import type { BrowserContext } from "playwright-core";

export declare const CHROMIUM_FLAGS: readonly string[];
export declare function chromiumPath(): string;
export declare function launchChromium(options?: {
  executablePath?: string;
  colorScheme?: "light" | "dark";
  width?: number;
  height?: number;
}): Promise<{ context: BrowserContext; close(): Promise<void> }>;
