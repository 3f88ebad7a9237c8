import { defineConfig } from "tsup";

export const config = defineConfig({
  // `cli` is the `streamll` bin (streamll compare); only `index` is public API and gets type declarations.
  entry: { index: "src/index.ts", cli: "src/cli.ts" },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts" } },
  sourcemap: true,
  clean: true,
  target: "node22",
  platform: "node",
  splitting: false,
});

export default config;
