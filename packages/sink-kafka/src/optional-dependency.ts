import { ConfigurationError } from "@streamll/core";

function isModuleNotFound(error: unknown, name: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const notFound = code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
  return notFound && (typeof message !== "string" || message.includes(name));
}

/**
 * Loads an optional peer dependency on first use. A missing package becomes a `ConfigurationError` that names
 * the package and the feature needing it; any other load failure is rethrown as it is.
 * @param name the npm package, for the message.
 * @param feature what needs it, e.g. `MSK IAM authentication`.
 * @param load a literal `import()` of the package (so bundlers and TypeScript see it).
 */
export async function loadOptional<T>(name: string, feature: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isModuleNotFound(error, name)) {
      throw new ConfigurationError(
        `${feature} needs the optional package "${name}", which is not installed: npm install ${name}`,
        [{ path: name, message: "optional peer dependency not installed" }],
        { cause: error },
      );
    }
    throw error;
  }
}
