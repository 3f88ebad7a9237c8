import { v } from "../options/schema";

/** A built-in way of computing `code_signature`. See docs/guides/version-tracking.md for what each detects. */
export type CodeSignatureStrategyName = "ast" | "ast-deps" | "source" | "signature";

/** What a custom strategy is told about the code it fingerprints. */
export interface CodeSignatureContext {
  /** The object passed to `instrument()` (a class, function or object), unwrapped. */
  readonly target: object;
  /** The instrumented method's name, or null when the target is a plain function. */
  readonly methodName: string | null;
  /** The module name events carry, when known. */
  readonly moduleName: string | null;
  /** `Function.prototype.toString` of the function, or null for native and bound functions. */
  readonly source: string | null;
}

/**
 * A user-supplied strategy: return a version label or hash for `fn`, or null when unknown. Called once per
 * (target, method) and cached. A result of 1 to 128 characters is used as is; a longer one is hashed to 12
 * hex characters. A strategy that throws yields a null signature.
 */
export type CodeSignatureFunction = (fn: Function, context: CodeSignatureContext) => string | null;

export type CodeSignatureStrategy = CodeSignatureStrategyName | CodeSignatureFunction;

/** `configure({ versionTracking })`: which code produced each event. Off unless set. */
export interface VersionTrackingOptions {
  /**
   * How `code_signature` is computed. Default `"ast"`: a hash of the method's normalized syntax tree (ignores
   * formatting and comments).
   */
  strategy?: CodeSignatureStrategy;
  /**
   * The `module_version` label, e.g. a release tag or build id. Default: `name@version` of the package.json
   * nearest to the entry script (`process.argv[1]`), or of the working directory.
   */
  moduleVersion?: string;
  /**
   * The `git_commit` value. Default `"auto"`: the short commit of the repository around the working directory
   * (read from `.git` without spawning git) plus `-dirty` when `git status --porcelain` reports changes, or
   * else the first CI/CD commit variable that is set (GIT_COMMIT, SOURCE_VERSION, VERCEL_GIT_COMMIT_SHA, …).
   * A string is used as is; null records no commit.
   */
  gitCommit?: string | null | "auto";
  /**
   * Packages whose installed versions go into the `version` event. Default: the `dependencies` of the
   * package.json nearest to the entry script (at most 50).
   */
  dependencies?: readonly string[];
}

/** The options with defaults applied. */
export interface ResolvedVersionTrackingOptions {
  readonly strategy: CodeSignatureStrategy;
  readonly moduleVersion: string | null;
  readonly gitCommit: string | null | "auto";
  readonly dependencies: readonly string[] | null;
}

/** A built-in strategy name or a custom strategy function. */
export const codeSignatureStrategySchema = v.union(
  v.oneOf(["ast", "ast-deps", "source", "signature"]),
  v.fn<CodeSignatureFunction>("a function (fn, context) => string | null"),
);

/** The object form of `configure({ versionTracking })`. */
export const versionTrackingOptionsSchema = v.object<VersionTrackingOptions>({
  strategy: codeSignatureStrategySchema.optional(),
  moduleVersion: v.string({ min: 1, max: 512 }).optional(),
  gitCommit: v.string({ min: 1, max: 128, expected: '"auto" or a commit string' }).nullable().optional(),
  dependencies: v.array(v.string({ min: 1, max: 214, expected: "a package name" }), { max: 200 }).optional(),
});

/** Applies defaults; returns null when tracking is off. Expects input that passed the schema. */
export function resolveVersionTrackingOptions(
  input: boolean | VersionTrackingOptions | undefined | null,
): ResolvedVersionTrackingOptions | null {
  if (input === undefined || input === null || input === false) return null;
  const options: VersionTrackingOptions = input === true ? {} : input;
  return {
    strategy: options.strategy ?? "ast",
    moduleVersion: options.moduleVersion ?? null,
    gitCommit: options.gitCommit === undefined ? "auto" : options.gitCommit,
    dependencies: options.dependencies ?? null,
  };
}

/** The name recorded for a strategy in `version` events; user functions are recorded as `custom`. */
export function strategyName(strategy: CodeSignatureStrategy): CodeSignatureStrategyName | "custom" {
  return typeof strategy === "function" ? "custom" : strategy;
}
