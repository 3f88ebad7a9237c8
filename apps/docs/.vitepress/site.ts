// Where the site's pages come from. The site has one source of content: docs/ (every Markdown file there is a
// page, discovered, never listed), each published package's README (its page under /packages/), the
// packages' TSDoc (TypeDoc pages under /api/), sections of the production guides (one page per cloud
// service), and the stored bench results. Nothing is copied into this app.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";
// With the extension: scripts/api.mjs loads this file with Node's own TypeScript support.
import { type PublishedPackage, projectUrls, publishedPackages } from "../../../scripts/release/workspace.ts";

export const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
export const appRoot = fileURLToPath(new URL("..", import.meta.url));
export const urls = projectUrls(repoRoot);
/** The path the site is served under, from the docs address in the root package.json, e.g. `/streamll/`. */
export const base = new URL(urls.docs).pathname;
export const packages: PublishedPackage[] = publishedPackages(repoRoot);

/** Source files (relative to the repository) are mapped to site paths by stripping these prefixes. */
const sourceRoots = ["docs/", "apps/docs/pages/"];

export function sitePathOf(repoFile: string): string | undefined {
  const root = sourceRoots.find((prefix) => repoFile.startsWith(prefix));
  return root ? repoFile.slice(root.length) : undefined;
}

/** Headings outside fenced code, with their level and line index. */
export function headings(markdown: string): { level: number; text: string; line: number }[] {
  const found: { level: number; text: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((line, index) => {
    const marker = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (marker && (!fence || marker.startsWith(fence))) fence = fence ? undefined : marker;
    const heading = fence ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) found.push({ level: heading[1]?.length ?? 1, text: heading[2] ?? "", line: index });
  });
  return found;
}

/**
 * GitHub's heading slug (lower case, punctuation dropped, each space a dash): the docs are written and linked
 * on GitHub first, so the site gives headings the same ids (config.ts sets it as VitePress's slugify).
 */
export function slugify(text: string): string {
  return text
    .replace(/`([^`]*)`/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\*\*?/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

export interface DocPage {
  /** Repository path, e.g. `docs/production/kafka.md`. */
  file: string;
  /** Site path without extension, e.g. `production/kafka`. */
  path: string;
  title: string;
}

/** Every Markdown file under docs/, with its title (its first heading). */
export function docPages(): DocPage[] {
  const pages: DocPage[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(repoRoot, dir)).sort()) {
      const file = posix.join(dir, name);
      if (!name.includes(".")) walk(file);
      else if (name.endsWith(".md")) {
        const first = headings(readFileSync(join(repoRoot, file), "utf8"))[0];
        pages.push({ file, path: file.slice("docs/".length, -3), title: first?.text ?? name.slice(0, -3) });
      }
    }
  };
  walk("docs");
  return pages;
}

/**
 * Maps a link written in a repository file to where it points on the site: other docs pages and package
 * READMEs become site paths, absolute links to the site itself become internal, and anything else in the
 * repository (sources, examples, workflows) links to it on GitHub.
 */
export function siteHref(fromRepoFile: string, href: string): string {
  if (href.startsWith(urls.docs)) return `/${href.slice(urls.docs.length)}`;
  if (/^([a-z][a-z0-9+.-]*:|#|\/)/i.test(href)) return href;
  const [target = "", hash = ""] = href.split(/(?=#)/);
  const repoPath = posix
    .normalize(posix.join(posix.dirname(fromRepoFile), decodeURI(target)))
    .replace(/\/$/, "");
  if (repoPath.startsWith("..")) return href;
  const page = sitePathOf(repoPath);
  if (page?.endsWith(".md")) return `/${page.slice(0, -3).replace(/(^|\/)index$/, "$1")}${hash}`;
  if (repoPath === "docs") return `/${hash}`;
  if (repoPath === "README.md") return `/${hash}`;
  const pkg = /^packages\/([^/]+)(\/README\.md)?$/.exec(repoPath)?.[1];
  if (pkg && packages.some((p) => p.dir === pkg)) return `/packages/${pkg}${hash}`;
  const kind = existsSync(join(repoRoot, repoPath)) && !repoPath.includes(".") ? "tree" : "blob";
  return `${urls.web}/${kind}/main/${repoPath}${hash}`;
}

/** Rewrites the links of Markdown taken from `fromRepoFile` (outside code) with `siteHref`. */
export function rewriteLinks(
  markdown: string,
  fromRepoFile: string,
  anchor = (hash: string) => hash,
): string {
  const parts = markdown.split(/(^(?:```|~~~)[\s\S]*?^(?:```|~~~)\s*$|`[^`\n]*`)/m);
  return parts
    .map((part, index) =>
      index % 2 === 1
        ? part
        : part.replace(
            /(\]\(\s*<?)([^)\s>]+)/g,
            (_, open: string, href: string) =>
              `${open}${href.startsWith("#") ? anchor(href) : siteHref(fromRepoFile, href)}`,
          ),
    )
    .join("");
}

export interface CloudService {
  slug: string;
  name: string;
  /** The production guide (under docs/) and the start of its section heading for this service. */
  guide: string;
  heading: string;
  sink: string;
  /** What a reader sees in search results and the browser tab. */
  title: string;
  description: string;
}

/** One page per managed service; each is a section of a production guide (checked: a missing section fails
 * the build). */
export const cloudServices: CloudService[] = [
  {
    slug: "amazon-msk",
    name: "Amazon MSK",
    guide: "production/kafka",
    heading: "Amazon MSK",
    sink: "sink-kafka",
    title: "Amazon MSK: stream LLM events to Kafka with IAM, SCRAM or TLS",
    description:
      "Connect streamll's Kafka sink to Amazon MSK and MSK Serverless with IAM, SCRAM or mutual TLS.",
  },
  {
    slug: "confluent-cloud",
    name: "Confluent Cloud",
    guide: "production/kafka",
    heading: "Confluent Cloud",
    sink: "sink-kafka",
    title: "Confluent Cloud: stream LLM events with API keys over SASL/PLAIN",
    description: "Send streamll events to a Confluent Cloud Kafka cluster with an API key and secret.",
  },
  {
    slug: "azure-event-hubs",
    name: "Azure Event Hubs",
    guide: "production/kafka",
    heading: "Azure Event Hubs",
    sink: "sink-kafka",
    title: "Azure Event Hubs: LLM events through the Kafka endpoint",
    description: "Use streamll's Kafka sink with Azure Event Hubs: connection strings or Microsoft Entra ID.",
  },
  {
    slug: "elasticache",
    name: "Amazon ElastiCache",
    guide: "production/redis",
    heading: "AWS ElastiCache",
    sink: "sink-redis",
    title: "Amazon ElastiCache: LLM events in Redis Streams with IAM auth",
    description:
      "Write streamll events to ElastiCache for Redis OSS and Valkey, Serverless included, with IAM tokens.",
  },
  {
    slug: "azure-cache-for-redis",
    name: "Azure Cache for Redis",
    guide: "production/redis",
    heading: "Azure Cache for Redis",
    sink: "sink-redis",
    title: "Azure Cache for Redis: LLM events with Microsoft Entra ID",
    description:
      "Write streamll events to Azure Cache for Redis and Azure Managed Redis with access keys or Entra ID.",
  },
  {
    slug: "memorystore",
    name: "Google Cloud Memorystore",
    guide: "production/redis",
    heading: "Google Cloud Memorystore",
    sink: "sink-redis",
    title: "Google Cloud Memorystore: LLM events in Redis Streams with IAM",
    description:
      "Write streamll events to Memorystore for Redis, Redis Cluster and Valkey with IAM access tokens.",
  },
  {
    slug: "amazon-mq",
    name: "Amazon MQ for RabbitMQ",
    guide: "production/rabbitmq",
    heading: "Amazon MQ",
    sink: "sink-rabbitmq",
    title: "Amazon MQ for RabbitMQ: LLM events with publisher confirms",
    description:
      "Publish streamll events to Amazon MQ for RabbitMQ with passwords or IAM (STS web identity) credentials.",
  },
  {
    slug: "cloudamqp",
    name: "CloudAMQP",
    guide: "production/rabbitmq",
    heading: "CloudAMQP",
    sink: "sink-rabbitmq",
    title: "CloudAMQP: LLM events on hosted RabbitMQ",
    description:
      "Publish streamll events to a CloudAMQP RabbitMQ instance: connection URL, TLS and plan limits.",
  },
  {
    slug: "azure-service-bus",
    name: "Azure Service Bus",
    guide: "production/rabbitmq",
    heading: "Azure Service Bus",
    sink: "sink-rabbitmq",
    title: "Azure Service Bus: not supported (AMQP 1.0), and what to use instead",
    description:
      "Azure Service Bus speaks AMQP 1.0 only, which amqplib cannot; use Event Hubs' Kafka endpoint or RabbitMQ.",
  },
];

/** The section of a production guide for one cloud service, links made to work from the service's page. */
export function cloudSection(service: CloudService): string {
  const file = `docs/${service.guide}.md`;
  const markdown = readFileSync(join(repoRoot, file), "utf8");
  const lines = markdown.split("\n");
  const all = headings(markdown);
  const start = all.find((h) => h.level === 2 && h.text.startsWith(service.heading));
  if (!start) throw new Error(`${file} has no "## ${service.heading}…" section for the ${service.name} page`);
  const end = all.find((h) => h.line > start.line && h.level <= 2)?.line ?? lines.length;
  const section = lines.slice(start.line + 1, end).join("\n");
  const local = new Set(headings(section).map((h) => slugify(h.text)));
  // In-page anchors that point outside this section go to the guide.
  const anchor = (hash: string) => (local.has(hash.slice(1)) ? hash : `/${service.guide}${hash}`);
  return rewriteLinks(section, file, anchor).trim();
}

/** The first paragraph of prose in some Markdown, as plain text: the page's meta description. */
export function firstParagraph(markdown: string): string {
  const body = markdown.replace(/^---[\s\S]*?---\s*/, "");
  for (const block of body.split(/\n\s*\n/)) {
    const text = block.trim();
    if (text === "" || /^(#|```|~~~|\||<|>|[-*] |\d+\. |!\[)/.test(text)) continue;
    const plain = text
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[`*_]/g, "")
      .replace(/\s+/g, " ");
    return plain.length > 160 ? `${plain.slice(0, 157).replace(/\s+\S*$/, "")}…` : plain;
  }
  return "";
}

/** The generated API reference pages (scripts/api.mjs writes them), by package directory. */
export function apiPages(): { dir: string; path: string; title: string }[] {
  const apiDir = join(appRoot, "pages", "api");
  if (!existsSync(apiDir)) return [];
  const found: { dir: string; path: string; title: string }[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      if (!name.includes(".")) walk(file);
      else if (name.endsWith(".md")) {
        const path = relative(join(appRoot, "pages"), file).slice(0, -3);
        const first = headings(readFileSync(file, "utf8"))[0];
        found.push({ dir: path.split("/")[1] ?? "", path, title: first?.text ?? name });
      }
    }
  };
  walk(apiDir);
  return found;
}
