import { ConfigurationError } from "../errors";

/** One public constructor or factory, called with a misspelled option (see {@link misspelledOptionProblems}). */
export interface MisspellingCase {
  /** The export under test; text after a space describes the variant, e.g. `configure (per-sink delivery)`. */
  readonly name: string;
  /** Calls the export with `options` (may return a promise). */
  readonly call: (options: object) => unknown;
  /** A misspelled top-level key and the key the error should suggest. */
  readonly top: readonly [typo: string, meant: string];
  /** Valid options with one nested key misspelled, the path the error should name, and the suggestion. */
  readonly nested?: readonly [options: object, path: string, meant: string];
}

async function failureOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function check(
  name: string,
  call: () => unknown,
  path: string,
  meant: string,
  problems: string[],
): Promise<void> {
  const error = await failureOf(call);
  if (!(error instanceof ConfigurationError)) {
    problems.push(`${name}: expected a ConfigurationError for ${path}, got ${String(error)}`);
    return;
  }
  // The options may sit under a prefix (`sinks[0].`, `delivery.`) that the error names too.
  const issue = error.issues.find((found) => found.path === path || found.path.endsWith(`.${path}`));
  const expected = `unknown option; did you mean \`${meant}\`? (allowed: `;
  if (
    issue === undefined ||
    !issue.message.startsWith(expected) ||
    !error.message.includes(`${issue.path}: ${expected}`)
  ) {
    problems.push(`${name}: ${path} not reported as "${expected}…" in: ${error.message}`);
  }
}

/**
 * Calls every case with its misspelled top-level key and, when given, its nested one. Returns one line per
 * case whose `ConfigurationError` does not name the path, suggest the meant key and list the allowed keys;
 * an empty list when all do. Used by each package's table test.
 */
export async function misspelledOptionProblems(cases: readonly MisspellingCase[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { name, call, top, nested } of cases) {
    const [typo, meant] = top;
    await check(`${name} (top level)`, () => call({ [typo]: 1 }), typo, meant, problems);
    if (nested !== undefined) {
      const [options, path, nestedMeant] = nested;
      await check(`${name} (nested)`, () => call(options), path, nestedMeant, problems);
    }
  }
  return problems;
}

/**
 * Names of exported functions and classes that are neither tested by a case nor listed as taking no options
 * object, so a new export cannot skip the misspelling test.
 */
export function exportsWithoutCases(
  modules: readonly Readonly<Record<string, unknown>>[],
  cases: readonly MisspellingCase[],
  withoutOptions: readonly string[],
): string[] {
  const covered = new Set([...cases.map((c) => c.name.split(" ")[0]), ...withoutOptions]);
  const missing = new Set<string>();
  for (const module of modules) {
    for (const [name, value] of Object.entries(module)) {
      if (typeof value === "function" && !covered.has(name)) missing.add(name);
    }
  }
  return [...missing];
}
