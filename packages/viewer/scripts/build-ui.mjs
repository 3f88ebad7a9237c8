// Builds the viewer's page into dist/ui: one minified script (uPlot included) and one stylesheet. The page
// works offline: nothing is loaded from anywhere but the viewer itself.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}dist/ui/`;

export async function buildUi() {
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [`${root}src/ui/main.ts`],
    outfile: `${out}app.js`,
    bundle: true,
    minify: true,
    format: "iife",
    target: ["chrome110", "firefox115", "safari16"],
    legalComments: "none",
    logLevel: "warning",
  });
  const require = createRequire(import.meta.url);
  const uplotCss = await readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const ours = await readFile(`${root}src/ui/styles.css`, "utf8");
  await writeFile(`${out}app.css`, `${uplotCss}\n${ours}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildUi();
