import { defineConfig } from "tsup";

export const config = defineConfig([
  {
    // One entry per subpath export: the cloud adapters load their SDKs (optional peers) only when imported.
    entry: ["src/index.ts", "src/elasticache.ts", "src/azure.ts", "src/memorystore.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: false,
    // Both builds run at once: the bin's files are kept out of this one's clean-up.
    clean: ["!cli.js"],
    target: "node22",
    platform: "node",
    splitting: false,
  },
  {
    // The `streamll-redis` bin: ESM only, no type declarations (it is not an import path).
    entry: ["src/cli.ts"],
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
