// Serves the built site (.vitepress/dist) the way GitHub Pages does: under the site's base path, with clean
// URLs (`/x` serves `x.html`), a redirect from `/dir` to `/dir/` for folders with an index (the client-side
// router needs the slash), `404.html` for anything missing, and `/` redirecting to the base. Used by
// `bash scripts/docs.sh` and by the browser tests. Binds to 127.0.0.1 only.
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".xml": "application/xml",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Starts the server; resolves with its URL (including the base path) and a `close()`.
 * @param {{ dir: string; base: string; port?: number }} options
 */
export function serveSite({ dir, base, port = 0 }) {
  const file = (path) => {
    const candidates = [path, `${path}.html`, join(path, "index.html")];
    return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith(base)) {
      res.writeHead(302, { location: base }).end();
      return;
    }
    const relative = normalize(decodeURIComponent(url.pathname.slice(base.length))).replace(
      /^(\.\.[/\\])+/,
      "",
    );
    const folder = join(dir, relative);
    if (
      !url.pathname.endsWith("/") &&
      existsSync(join(folder, "index.html")) &&
      !existsSync(`${folder}.html`)
    ) {
      res.writeHead(301, { location: `${url.pathname}/${url.search}` }).end();
      return;
    }
    const found = file(join(dir, relative));
    const status = found ? 200 : 404;
    const body = readFileSync(found ?? join(dir, "404.html"));
    res.writeHead(status, {
      "content-type": types[extname(found ?? "404.html")] ?? "application/octet-stream",
    });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address();
      resolve({
        url: `http://127.0.0.1:${bound}${base}`,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = fileURLToPath(new URL("../.vitepress/dist", import.meta.url));
  if (!existsSync(join(dir, "index.html"))) {
    console.error(
      "docs: the site is not built (run `bash scripts/docs.sh`, or `pnpm --filter @streamll/docs build`)",
    );
    process.exit(1);
  }
  const port = Number(process.env.PORT ?? 4173);
  const { url } = await serveSite({ dir, base: siteBase(dir), port });
  console.log(`docs: serving the streamll docs site at ${url} (Ctrl-C stops)`);
}

/** The base path the site was built with, read from its own index.html. */
function siteBase(dir) {
  const html = readFileSync(join(dir, "index.html"), "utf8");
  return /<script[^>]*src="([^"]*?)assets\//.exec(html)?.[1] ?? "/";
}
