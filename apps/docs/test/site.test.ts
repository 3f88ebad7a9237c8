// The built site in a real headless Chromium: every page loads without console errors, every internal link
// and anchor resolves, search finds "ElastiCache", code is highlighted, and the pages the site promises
// (every docs/ page, every package, every cloud service) exist with proper titles. Screenshots of the home
// page and one guide are kept in .artifacts/docs/ (gitignored).
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBenchResults } from "../.vitepress/bench";
import { appRoot, base, cloudServices, docPages, packages, repoRoot } from "../.vitepress/site";
import { serveSite } from "../scripts/serve.mjs";
import { launchChromium } from "./browser";

const dist = join(appRoot, ".vitepress", "dist");
const artifacts = join(repoRoot, ".artifacts", "docs");

interface CodeBlock {
  lang: string;
  colors: number;
}
interface Crawled {
  path: string;
  errors: string[];
  title: string;
  h1: string;
  description: string;
  canonical: string;
  ids: string[];
  links: string[];
  code: CodeBlock[];
  /** The text of every inline code element of the page's content. */
  inlineCode: string[];
}

/** Site paths of every built page, e.g. `""` for the home page, `production/kafka`. */
function builtPages(): string[] {
  const pages: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) {
        if (name !== "assets") walk(file);
      } else if (name.endsWith(".html") && name !== "404.html") {
        // Folder indexes are addressed with their slash (`api/`), as the site links them.
        pages.push(
          relative(dist, file)
            .slice(0, -".html".length)
            .replace(/(^|\/)index$/, "$1"),
        );
      }
    }
  };
  walk(dist);
  return pages.sort();
}

let site: { url: string; close: () => Promise<void> };
let browser: Awaited<ReturnType<typeof launchChromium>>;
let context: BrowserContext;
const crawled = new Map<string, Crawled>();

/** Opens a page and waits until it is fully parsed, hydrated by Vue and quiet on the network (a large API
 * page takes a while to parse on a busy machine; `networkidle` alone can come first). */
async function open(page: Page, path: string): Promise<void> {
  await page.goto(`${site.url}${path}`, { waitUntil: "load" });
  await page.waitForFunction(
    () => document.readyState === "complete" && "__vue_app__" in (document.querySelector("#app") ?? {}),
  );
  await page.waitForLoadState("networkidle");
}

async function crawl(path: string): Promise<Crawled> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) =>
    errors.push(`failed: ${request.url()} ${request.failure()?.errorText}`),
  );
  page.on("response", (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await open(page, path);
  const found = await page.evaluate(() => ({
    title: document.title,
    h1: [...(document.querySelector(".vp-doc h1, .VPHero .name")?.childNodes ?? [])]
      .filter((node) => !(node instanceof Element && node.classList.contains("header-anchor")))
      .map((node) => node.textContent)
      .join("")
      .trim(),
    description: document.querySelector('meta[name="description"]')?.getAttribute("content") ?? "",
    canonical: document.querySelector('link[rel="canonical"]')?.getAttribute("href") ?? "",
    ids: [...document.querySelectorAll("[id]")].map((element) => element.id),
    links: [...document.querySelectorAll("a[href]")].map((a) => (a as HTMLAnchorElement).href),
    inlineCode: [...document.querySelectorAll(".vp-doc :not(pre) > code")].map(
      (code) => code.textContent ?? "",
    ),
    code: [...document.querySelectorAll('.vp-doc div[class*="language-"]')].map((block) => ({
      lang: /language-(\S+)/.exec(block.className)?.[1] ?? "",
      colors: new Set(
        [...block.querySelectorAll("pre code span[style]")].map((span) => span.getAttribute("style")),
      ).size,
    })),
  }));
  await page.close();
  return { path, errors, ...found };
}

beforeAll(async () => {
  if (!existsSync(join(dist, "index.html")))
    throw new Error("the site is not built: run the docs build first");
  site = await serveSite({ dir: dist, base });
  browser = await launchChromium();
  context = browser.context;
  for (const path of builtPages()) crawled.set(path, await crawl(path));
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
});

/** How the page prints a number (see BenchResults.vue). */
const formatNumber = (value: number) =>
  Math.abs(value) >= 100
    ? Math.round(value).toLocaleString("en-US")
    : Number(value.toPrecision(3)).toString();

/** The page and anchor an internal link points at, or undefined for links that leave the site. */
function target(href: string): { path: string; hash: string } | undefined {
  const url = new URL(href);
  if (url.origin !== new URL(site.url).origin || !url.pathname.startsWith(base)) return undefined;
  const path = decodeURIComponent(url.pathname.slice(base.length))
    .replace(/\.html$/, "")
    .replace(/(^|\/)index$/, "$1");
  return { path, hash: decodeURIComponent(url.hash.slice(1)) };
}

describe("every page", () => {
  it("was crawled: the site has the pages it promises", () => {
    const paths = [...crawled.keys()];
    expect(paths).toContain("");
    for (const doc of docPages()) expect(paths, `docs/${doc.path}.md`).toContain(doc.path);
    for (const pkg of packages) {
      expect(paths).toContain(`packages/${pkg.dir}`);
      expect(paths).toContain(`api/${pkg.dir}/`);
    }
    for (const service of cloudServices) expect(paths).toContain(`cloud/${service.slug}`);
    expect(paths).toContain("benchmarks");
  });

  it("loads without console errors, page errors or failed requests", () => {
    const failures = [...crawled.values()].flatMap((page) =>
      page.errors.map((error) => `/${page.path}: ${error}`),
    );
    expect(failures).toEqual([]);
  });

  it("has every internal link and anchor resolve", () => {
    const broken: string[] = [];
    for (const page of crawled.values()) {
      for (const href of new Set(page.links)) {
        const to = target(href);
        if (!to) continue;
        const asset = existsSync(join(dist, to.path)) && statSync(join(dist, to.path)).isFile();
        const linked = crawled.get(to.path);
        if (!linked && !asset) broken.push(`/${page.path} → ${href} (no such page)`);
        else if (linked && to.hash !== "" && !linked.ids.includes(to.hash)) {
          broken.push(`/${page.path} → ${href} (no anchor #${to.hash})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("has an SEO title, a meta description and a canonical address", () => {
    for (const page of crawled.values()) {
      expect(page.title, `/${page.path}`).toMatch(/streamll/);
      expect(page.title.length, `/${page.path} title`).toBeLessThanOrEqual(90);
      expect(page.description.length, `/${page.path} description`).toBeGreaterThan(40);
      expect(page.canonical, `/${page.path}`).toMatch(/^https:\/\//);
    }
  });

  it("highlights its code blocks (several token colours per block)", () => {
    const plain = ["txt", "text", "plaintext", "log"];
    const blocks = [...crawled.values()].flatMap((page) =>
      page.code
        .filter((block) => !plain.includes(block.lang))
        .map((block) => ({ ...block, page: page.path })),
    );
    expect(blocks.length).toBeGreaterThan(20);
    const flat = blocks.filter((block) => block.colors < 2).map((block) => `/${block.page} (${block.lang})`);
    expect(flat).toEqual([]);
  });
});

describe("the cloud service pages", () => {
  it.each(cloudServices.map((service) => [service.name, service]))(
    "%s has its own page and title",
    (name, service) => {
      const page = crawled.get(`cloud/${service.slug}`);
      expect(page?.h1).toBe(name);
      expect(page?.title).toContain(service.title);
    },
  );

  it("shows inline code as written: a template's {{ … }} is text, not a Vue interpolation", () => {
    expect(crawled.get("concepts/events")?.inlineCode).toContain("{{ api_key }}");
  });

  it("says plainly that Azure Service Bus cannot work (AMQP 1.0) and points to alternatives", () => {
    const page = crawled.get("cloud/azure-service-bus");
    expect(
      page?.links.some(
        (href) => href.includes("/cloud/azure-event-hubs") || href.includes("/production/kafka"),
      ),
    ).toBe(true);
  });
});

describe("in the browser", () => {
  it('finds "ElastiCache" with the local search', async () => {
    const page = await context.newPage();
    await open(page, "");
    await page.locator(".VPNavBarSearch button").click();
    const input = page.locator("#localsearch-input");
    await input.fill("ElastiCache");
    const results = page.locator(".VPLocalSearchBox .results li");
    await results.first().waitFor({ timeout: 30_000 });
    const texts = await results.allTextContents();
    expect(texts.some((text) => text.includes("ElastiCache"))).toBe(true);
    const hrefs = await page
      .locator(".VPLocalSearchBox .results li a")
      .evaluateAll((links) => links.map((a) => (a as HTMLAnchorElement).href));
    expect(hrefs.some((href) => href.includes("/cloud/elasticache"))).toBe(true);
    await page.close();
  });

  it("renders highlighted TypeScript on a guide (several distinct computed colours)", async () => {
    const page = await context.newPage();
    await open(page, "getting-started");
    const colors = await page
      .locator(".vp-doc div.language-ts pre code")
      .first()
      .evaluate((code) => {
        return new Set([...code.querySelectorAll("span")].map((span) => getComputedStyle(span).color)).size;
      });
    expect(colors).toBeGreaterThanOrEqual(3);
    await page.close();
  });

  it("keeps screenshots of the home page and a guide as artifacts", async () => {
    mkdirSync(artifacts, { recursive: true });
    const page = await context.newPage();
    for (const [path, file] of [
      ["", "home.png"],
      ["getting-started", "guide-getting-started.png"],
    ] as const) {
      await open(page, path);
      await page.screenshot({ path: join(artifacts, file), fullPage: path === "" });
      expect(statSync(join(artifacts, file)).size).toBeGreaterThan(10_000);
    }
    await page.close();
  });
});

describe("the benchmarks page", () => {
  it("renders every stored result as a table row and a chart bar, with the machine", async () => {
    const files = loadBenchResults();
    const page = await context.newPage();
    await open(page, "benchmarks");
    const text = (await page.locator(".vp-doc").textContent()) ?? "";
    if (files.length === 0) expect(text).toContain("No benchmark results are stored yet");
    for (const file of files) {
      expect(text).toContain(file.file);
      for (const value of Object.values(file.machine)) expect(text).toContain(String(value));
      for (const row of file.rows) {
        const cells = await page.locator(".vp-doc table tr", { hasText: row.case }).allTextContents();
        expect(
          cells.some((cell) => cell.includes(formatNumber(row.value))),
          `${row.case} ${row.metric}`,
        ).toBe(true);
      }
    }
    const bars = await page.locator(".bench-chart svg rect").count();
    expect(bars).toBe(files.reduce((sum, file) => sum + file.rows.length, 0));
    await page.close();
  });
});
