import { defineConfig } from "tsup";

export const config = defineConfig([
  {
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: false,
    // The bin and the page (dist/ui, built by scripts/build-ui.mjs) are kept out of this build's clean-up.
    clean: ["!cli.js", "!ui"],
    target: "node22",
    platform: "node",
    splitting: false,
    // `import.meta.url` finds the page's files next to the bundle, in the CommonJS build too.
    shims: true,
  },
  {
    // The `streamll-view` bin: ESM only, no type declarations (it is not an import path).
    entry: ["src/cli/cli.ts"],
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
