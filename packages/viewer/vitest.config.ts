import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against the core's source so a core change needs no rebuild to be tested here.
    alias: {
      "@streamll/core/internal": fileURLToPath(new URL("../core/src/internal.ts", import.meta.url)),
      "@streamll/core": fileURLToPath(new URL("../core/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The page the server serves is built once, before any test file runs.
    globalSetup: ["./test/build-ui.global.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The browser tests share two cores with everything else: one file at a time.
    fileParallelism: false,
  },
});
