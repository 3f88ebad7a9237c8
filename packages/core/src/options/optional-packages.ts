import { ConfigurationError } from "../errors";

function isModuleNotFound(error: unknown, name: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const notFound = code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
  return notFound && (typeof message !== "string" || message.includes(name));
}

/** An optional peer dependency and how to load it: a literal `import()`, so bundlers and TypeScript see it. */
export type OptionalPackage<T> = readonly [name: string, load: () => Promise<T>];

/**
 * Loads optional peer dependencies on first use. When any is not installed, one `ConfigurationError` names
 * every missing package and the feature needing them, with the install command as `fix`; a package that fails
 * to load for another reason is rethrown as it is.
 * @param feature what needs them, e.g. `ElastiCache IAM authentication`.
 */
export async function loadOptionalPackages<const T extends readonly unknown[]>(
  feature: string,
  packages: { readonly [K in keyof T]: OptionalPackage<T[K]> },
): Promise<T> {
  const list = packages as readonly OptionalPackage<unknown>[];
  const results = await Promise.allSettled(list.map(([, load]) => load()));
  const missing: string[] = [];
  for (const [index, result] of results.entries()) {
    if (result.status === "fulfilled") continue;
    const name = list[index]![0];
    if (!isModuleNotFound(result.reason, name)) throw result.reason;
    missing.push(name);
  }
  if (missing.length > 0) {
    const fix = `npm install ${missing.join(" ")}`;
    const what = missing.length === 1 ? "the optional package" : "the optional packages";
    throw new ConfigurationError(
      `${feature} needs ${what} ${missing.join(", ")}, not installed: ${fix}`,
      missing.map((name) => ({ path: name, message: "optional peer dependency not installed" })),
      { fix },
    );
  }
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
