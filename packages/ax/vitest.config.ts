import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against the core's source so a core change needs no rebuild to be tested here.
    alias: {
      "@streamll/core/internal": fileURLToPath(new URL("../core/src/internal.ts", import.meta.url)),
      "@streamll/core": fileURLToPath(new URL("../core/src/index.ts", import.meta.url)),
      // The examples import the package by name, as a user would.
      "@streamll/ax": fileURLToPath(new URL("./src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The suites configure the one process-wide streamll runtime: files run in sequence.
    fileParallelism: false,
  },
});
