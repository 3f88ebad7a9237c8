// Writes the pages that are views of other sources (not committed; regenerated on every build and dev start):
// one page per cloud service (its section of a production guide) and one per published package (its README,
// the same text npm shows). They are written as files, not dynamic routes, because VitePress's local search
// indexes only pages that exist as files.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { appRoot, cloudSection, cloudServices, docPages, packages, rewriteLinks, urls } from "./site";

function frontMatter(fields: Record<string, string | boolean>): string {
  const lines = Object.entries(fields).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
  return ["---", ...lines, "---", ""].join("\n");
}

function writePages(folder: string, pages: { name: string; text: string }[]): void {
  const dir = join(appRoot, "pages", folder);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const page of pages) writeFileSync(join(dir, `${page.name}.md`), page.text);
}

const rawRepo = `https://raw.githubusercontent.com${new URL(urls.web).pathname}/main/`;

export function generatePages(): void {
  const guides = docPages();
  writePages(
    "cloud",
    cloudServices.map((service) => {
      const sink = packages.find((p) => p.dir === service.sink);
      const guide = guides.find((page) => page.path === service.guide)?.title ?? service.guide;
      const intro = [
        `${service.name} with [\`${sink?.manifest.name}\`](/packages/${service.sink}). This page is the ${service.name}`,
        `section of [${guide}](/${service.guide}), which also covers the settings every deployment shares,`,
        "credential rotation, performance and troubleshooting. What it says about the service itself, beyond",
        "what the test suite exercises against local brokers, is documented by the vendor.",
      ].join("\n");
      const meta = { title: service.title, description: service.description, editLink: false };
      const text = `${frontMatter(meta)}\n# ${service.name}\n\n${intro}\n\n${cloudSection(service)}\n`;
      return { name: service.slug, text };
    }),
  );
  writePages(
    "packages",
    packages.map((pkg) => {
      const readme = readFileSync(join(pkg.path, "README.md"), "utf8");
      const summary = (pkg.manifest.description ?? "").split(/[,.:;(]/)[0]?.trim();
      const meta = {
        title: `${pkg.manifest.name}: ${summary}`,
        description: pkg.manifest.description ?? "",
        editLink: false,
      };
      const api = `\n\n---\n\nAPI reference: [${pkg.manifest.name}](/api/${pkg.dir}/).\n`;
      return {
        name: pkg.dir,
        // Images the README shows from the repository (absolute for npm) are bundled from the repository here.
        text: `${frontMatter(meta)}\n${rewriteLinks(readme, `packages/${pkg.dir}/README.md`).replaceAll(rawRepo, "../../../../")}${api}`,
      };
    }),
  );
}
