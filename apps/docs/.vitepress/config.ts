import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { MarkdownRenderer } from "vitepress";
import { type DefaultTheme, defineConfig, type HeadConfig } from "vitepress";
import { generatePages } from "./generate";
import {
  apiPages,
  base,
  cloudServices,
  docPages,
  firstParagraph,
  packages,
  repoRoot,
  siteHref,
  sitePathOf,
  slugify,
  urls,
} from "./site";

// Before VitePress scans for pages: the cloud and package pages are views of docs/ and the READMEs.
generatePages();

const groupTitles: Record<string, string> = {
  "": "Guide",
  concepts: "Concepts",
  guides: "Guides",
  production: "Production",
};
// Known pages first, in reading order; any other page of docs/ follows in its folder, by title.
const readingOrder = ["getting-started", "kafka", "concepts/events", "concepts/delivery", "releasing"];

function docsSidebar(): DefaultTheme.SidebarItem[] {
  const groups = new Map<string, DefaultTheme.SidebarItem[]>();
  const rank = (path: string) =>
    readingOrder.includes(path) ? readingOrder.indexOf(path) : readingOrder.length;
  const pages = docPages().sort((a, b) => rank(a.path) - rank(b.path) || a.title.localeCompare(b.title));
  for (const page of pages) {
    const folder = page.path.includes("/") ? page.path.slice(0, page.path.lastIndexOf("/")) : "";
    groups.set(folder, [...(groups.get(folder) ?? []), { text: page.title, link: `/${page.path}` }]);
  }
  const folders = [...groups.keys()].sort((a, b) => {
    const known = Object.keys(groupTitles);
    const ia = known.includes(a) ? known.indexOf(a) : known.length;
    const ib = known.includes(b) ? known.indexOf(b) : known.length;
    return ia - ib || a.localeCompare(b);
  });
  return folders.map((folder) => ({
    text:
      groupTitles[folder] ??
      folder.replace(/(^|[-/])(\w)/g, (_, sep: string, c: string) => `${sep ? " " : ""}${c.toUpperCase()}`),
    items: groups.get(folder),
  }));
}

function sidebar(): DefaultTheme.SidebarItem[] {
  const sinks = packages.filter((p) => p.dir.startsWith("sink-"));
  const others = packages.filter((p) => !p.dir.startsWith("sink-"));
  const pkgItem = (p: (typeof packages)[number]) => ({ text: p.manifest.name, link: `/packages/${p.dir}` });
  const api = apiPages();
  return [
    ...docsSidebar(),
    { text: "Packages", items: others.map(pkgItem) },
    { text: "Sinks", items: sinks.map(pkgItem) },
    {
      text: "Cloud services",
      collapsed: false,
      items: cloudServices.map((s) => ({ text: s.name, link: `/cloud/${s.slug}` })),
    },
    { text: "Benchmarks", items: [{ text: "Benchmark results", link: "/benchmarks" }] },
    {
      text: "API reference",
      collapsed: true,
      items: api.map((page) => ({ text: page.title, link: `/${page.path.replace(/\/index$/, "/")}` })),
    },
  ];
}

/** Every link in Markdown from the repository is mapped to where it points on the site (see `siteHref`). */
function siteLinks(md: MarkdownRenderer): void {
  md.core.ruler.push("streamll-site-links", (state) => {
    const env = state.env as { realPath?: string; path?: string };
    const source = (env.realPath ?? env.path ?? "").slice(repoRoot.length).replace(/^\/+/, "");
    for (const token of state.tokens) {
      for (const child of token.children ?? []) {
        if (child.type !== "link_open") continue;
        const href = child.attrGet("href");
        if (href) child.attrSet("href", siteHref(source, href));
      }
    }
  });
}

/**
 * Inline code is shown as written: Vue would read `{{ api_key }}` in a guide's inline code as an interpolation
 * and render nothing (VitePress marks code blocks `v-pre`, not inline code).
 */
function inlineCodeVerbatim(md: MarkdownRenderer): void {
  const render = md.renderer.rules.code_inline;
  md.renderer.rules.code_inline = (tokens, idx, options, env, self) => {
    tokens[idx]?.attrSet("v-pre", "");
    return render ? render(tokens, idx, options, env, self) : self.renderToken(tokens, idx, options);
  };
}

const rootManifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  description?: string;
};
const siteDescription =
  "streamll: real-time observability for LLM programs in TypeScript — every module call, token and error as a " +
  "versioned JSON event on Kafka, Redis Streams or RabbitMQ.";

export default defineConfig({
  title: "streamll",
  titleTemplate: ":title · streamll",
  description: rootManifest.description ?? siteDescription,
  lang: "en-US",
  base,
  cleanUrls: true,
  // The content lives in the repository (docs/, package READMEs); this app only adds the site's own pages.
  srcDir: repoRoot,
  srcExclude: srcExclude(),
  rewrites: (page) => sitePathOf(page) ?? page,
  outDir: ".vitepress/dist",
  cacheDir: ".vitepress/cache",
  lastUpdated: false,
  sitemap: { hostname: urls.docs },
  head: [
    ["meta", { name: "theme-color", content: "#3c8772" }],
    ["meta", { property: "og:type", content: "website" }],
    ["meta", { property: "og:site_name", content: "streamll" }],
  ],
  markdown: {
    config: (md) => {
      siteLinks(md);
      inlineCodeVerbatim(md);
    },
    anchor: { slugify },
    theme: { light: "github-light", dark: "github-dark" },
  },
  transformPageData(pageData) {
    // A meta description for every page: the front matter's, else the page's first paragraph.
    if (!pageData.frontmatter.description && pageData.filePath.endsWith(".md")) {
      try {
        pageData.description = firstParagraph(readFileSync(join(repoRoot, pageData.filePath), "utf8"));
      } catch {
        pageData.description = siteDescription;
      }
    }
  },
  transformHead({ pageData, title, description }) {
    const path = pageData.relativePath.replace(/(^|\/)index\.md$/, "$1").replace(/\.md$/, "");
    const head: HeadConfig[] = [
      ["link", { rel: "canonical", href: `${urls.docs}${path}` }],
      ["meta", { property: "og:title", content: title }],
      ["meta", { property: "og:description", content: description }],
      ["meta", { property: "og:url", content: `${urls.docs}${path}` }],
    ];
    return head;
  },
  themeConfig: {
    siteTitle: "streamll",
    nav: [
      { text: "Guide", link: "/getting-started" },
      { text: "Cloud services", link: `/cloud/${cloudServices[0]?.slug}` },
      { text: "API", link: "/api/" },
      { text: "Benchmarks", link: "/benchmarks" },
    ],
    sidebar: sidebar(),
    search: { provider: "local" },
    outline: { level: [2, 3] },
    socialLinks: [{ icon: "github", link: urls.web }],
    // `:path` is the source file in the repository (docs/…); pages made here set `editLink: false`.
    editLink: { pattern: `${urls.web}/edit/main/:path`, text: "Edit this page on GitHub" },
    footer: { message: "Released under the Apache-2.0 license." },
  },
});

/** Everything in the repository except docs/ and this app's pages/: the site's only sources. */
function srcExclude(): string[] {
  const keep = ["docs", "apps"];
  const exclude = readdirSync(repoRoot)
    .filter((name) => !keep.includes(name))
    .map((name) => `${name}/**`);
  exclude.push("*.md");
  for (const app of readdirSync(join(repoRoot, "apps"))) if (app !== "docs") exclude.push(`apps/${app}/**`);
  for (const entry of readdirSync(join(repoRoot, "apps", "docs"))) {
    if (entry !== "pages") exclude.push(`apps/docs/${entry}/**`, `apps/docs/${entry}`);
  }
  return exclude;
}
