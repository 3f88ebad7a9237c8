import { defineConfig } from "tsup";

export const config = defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: false,
  clean: true,
  target: "node22",
  platform: "node",
  splitting: false,
  // Ax is the user's own copy (a peer): never bundled.
  external: ["@ax-llm/ax"],
});

export default config;
