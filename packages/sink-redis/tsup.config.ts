import { defineConfig } from "tsup";

export const config = defineConfig({
  // One entry per subpath export: the cloud adapters load their SDKs (optional peers) only when imported.
  entry: ["src/index.ts", "src/elasticache.ts", "src/azure.ts", "src/memorystore.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node22",
  platform: "node",
  splitting: false,
});

export default config;
