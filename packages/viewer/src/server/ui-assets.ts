import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The page's script and stylesheet, built by `scripts/build-ui.mjs` into `dist/ui`. */
export interface UiAssets {
  readonly script: Buffer;
  readonly style: Buffer;
}

/**
 * Next to the bundle (`dist/index.js` → `dist/ui/`), or, when running from the sources (the package's own
 * tests), in the package's `dist/ui/`.
 */
const CANDIDATES = ["./ui/", "../../dist/ui/"];

let cached: UiAssets | undefined;

/** Reads the built page once. Throws naming the build step when it is missing. */
export function loadUiAssets(): UiAssets {
  if (cached !== undefined) return cached;
  for (const candidate of CANDIDATES) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}app.js`)) {
      cached = { script: readFileSync(`${dir}app.js`), style: readFileSync(`${dir}app.css`) };
      return cached;
    }
  }
  throw new Error("the viewer's page is not built: run `pnpm --filter @streamll/viewer build`");
}

/** The page: no inline script or style (the CSP forbids both); the token rides on the asset URLs. */
export function pageHtml(token: string): string {
  const query = `?token=${encodeURIComponent(token)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>streamll viewer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css${query}">
<script src="app.js${query}" defer></script>
</head>
<body>
<noscript>The streamll viewer needs JavaScript.</noscript>
</body>
</html>
`;
}
