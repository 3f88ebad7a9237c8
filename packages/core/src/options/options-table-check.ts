import { ConfigurationError } from "../errors";

/** One documented options table: the marker that precedes it in the Markdown and the call that validates. */
export interface OptionsTableCase {
  /**
   * The name in the marker comment `<!-- options: NAME -->` placed right before the table (several tables may
   * share a name; their keys are added up).
   */
  readonly name: string;
  /** Calls the constructor or factory with `options` (may return a promise); it must validate them. */
  readonly call: (options: object) => unknown;
  /** Accepted keys the table leaves out on purpose, each with the reason (e.g. documented in a sub-table). */
  readonly undocumented?: Readonly<Record<string, string>>;
}

const PROBE = "__streamllUndocumentedProbe__";

/** The top-level keys `call` accepts, from the "allowed:" list of the error a probe key produces. */
export async function acceptedOptionKeys(call: (options: object) => unknown): Promise<string[]> {
  let error: unknown;
  try {
    await call({ [PROBE]: true });
  } catch (caught) {
    error = caught;
  }
  const issue =
    error instanceof ConfigurationError
      ? error.issues.find((found) => found.path.endsWith(PROBE))
      : undefined;
  const allowed = issue === undefined ? null : /\(allowed: (.*)\)$/.exec(issue.message);
  if (allowed === null || allowed[1] === undefined) {
    throw new Error(`the call did not reject an unknown key with the allowed keys: ${String(error)}`);
  }
  return allowed[1] === "none" ? [] : allowed[1].split(", ");
}

/**
 * The option names in the first column of the tables after each `<!-- options: NAME -->` marker of
 * `markdown`: every backticked identifier of that column (`` `exchange` / `declareExchange` `` gives both).
 */
export function documentedOptionKeys(markdown: string, name: string): string[] | undefined {
  const lines = markdown.split("\n");
  let found = false;
  const keys = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== `<!-- options: ${name} -->`) continue;
    found = true;
    let row = i + 1;
    while (row < lines.length && lines[row]!.trim() === "") row++;
    // Header and separator rows first.
    for (row += 2; row < lines.length && lines[row]!.trimStart().startsWith("|"); row++) {
      const firstCell = lines[row]!.split("|")[1] ?? "";
      for (const match of firstCell.matchAll(/`([A-Za-z_$][\w$]*)`/g)) keys.add(match[1]!);
    }
  }
  return found ? [...keys] : undefined;
}

/**
 * Compares each documented options table with what the validator accepts. Returns one line per table that
 * is missing, leaves out an accepted option, or lists one the validator rejects; empty when all match.
 */
export async function optionsTableProblems(
  markdown: string,
  cases: readonly OptionsTableCase[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const { name, call, undocumented = {} } of cases) {
    const documented = documentedOptionKeys(markdown, name);
    if (documented === undefined) {
      problems.push(`${name}: no table marked <!-- options: ${name} -->`);
      continue;
    }
    const accepted = await acceptedOptionKeys(call);
    const missing = accepted.filter((key) => !documented.includes(key) && !(key in undocumented));
    const unknown = documented.filter((key) => !accepted.includes(key));
    if (missing.length > 0) problems.push(`${name}: accepted but not in the table: ${missing.join(", ")}`);
    if (unknown.length > 0) problems.push(`${name}: in the table but not accepted: ${unknown.join(", ")}`);
  }
  return problems;
}
