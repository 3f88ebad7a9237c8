import { defineConfig } from "tsup";

export const config = defineConfig({
  // `cli` is the `streamll` bin (streamll compare) and needs no type declarations; `internal` holds helpers
  // shared by streamll's own packages.
  entry: { index: "src/index.ts", internal: "src/internal.ts", cli: "src/cli/cli.ts" },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts", internal: "src/internal.ts" } },
  sourcemap: true,
  clean: true,
  target: "node22",
  platform: "node",
  splitting: false,
});

export default config;
