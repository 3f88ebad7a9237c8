// Regenerates docs/assets/viewer.png, the README's picture of the viewer: runs the offline demo with --view,
// opens its run in headless Chromium, selects the first answered question and takes a screenshot.
// Usage: pnpm --filter @streamll/viewer screenshot   (after `pnpm build`). The browser tests run the same
// capture into test-artifacts/.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "./chromium.mjs";

const root = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs `apps/demo --view`, captures the viewer showing its run into `out` (PNG), then ends the demo. */
export async function captureDemo(out, { theme = "light" } = {}) {
  const cwd = mkdtempSync(join(tmpdir(), "streamll-viewer-shot-"));
  const demo = spawn(process.execPath, [join(root, "apps/demo/dist/main.js"), "--view"], {
    cwd,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => demo.on("exit", (code) => resolve(code)));
  let stdout = "";
  demo.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  let browser;
  try {
    const deadline = Date.now() + 60_000;
    while (!stdout.includes("press Ctrl-C to end")) {
      if (Date.now() > deadline) throw new Error(`the demo did not finish its run:\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const url = /live viewer: (\S+)/.exec(stdout)?.[1];
    if (url === undefined) throw new Error(`the demo printed no viewer URL:\n${stdout}`);
    browser = await launchChromium({ colorScheme: theme, width: 1280, height: 720 });
    const page = await browser.context.newPage();
    await page.goto(url);
    // Three questions, then the Ax program.
    await page.waitForFunction(() => document.querySelectorAll("tr[data-execution]").length === 4);
    // The oldest row is the first question, answered with streamed tokens.
    await page.click("tr[data-execution] >> nth=3");
    await page.waitForSelector(".stream-text");
    mkdirSync(dirname(out), { recursive: true });
    await page.screenshot({ path: out });
  } finally {
    await browser?.close();
    demo.kill("SIGINT");
    await exited;
    rmSync(cwd, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(root, "docs/assets/viewer.png");
  await captureDemo(out);
  console.log(`wrote ${out}`);
}
