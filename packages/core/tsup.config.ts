import { defineConfig } from "tsup";

// No source maps in the published packages: the output is unminified ES2023 that reads like the source, and
// maps without the sources they point at would only make debuggers show "source not found".
export const config = defineConfig([
  {
    // `internal` holds helpers shared by streamll's own packages.
    entry: { index: "src/index.ts", internal: "src/internal.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: false,
    // Both builds run at once: the bin's file is kept out of this one's clean-up.
    clean: ["!cli.js"],
    target: "node22",
    platform: "node",
    // The two entries share one chunk, so `internal` reaches the same runtime (configuration, span context)
    // as the public entry: an integration such as @streamll/ax opening spans through `internal` emits to the
    // sinks the application configured. Without it each entry would carry its own copy of that state.
    splitting: true,
  },
  {
    // The `streamll` bin (streamll compare): ESM only, no type declarations (it is not an import path).
    entry: { cli: "src/cli/cli.ts" },
    format: ["esm"],
    dts: false,
    sourcemap: false,
    clean: false,
    target: "node22",
    platform: "node",
    splitting: false,
  },
]);

export default config;
