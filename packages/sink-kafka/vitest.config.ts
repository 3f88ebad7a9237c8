import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against the core's source so a core change needs no rebuild to be tested here.
    alias: [
      {
        find: "@streamll/core/internal",
        replacement: fileURLToPath(new URL("../core/src/internal.ts", import.meta.url)),
      },
      {
        find: /^@streamll\/core$/,
        replacement: fileURLToPath(new URL("../core/src/index.ts", import.meta.url)),
      },
      // The examples import the package by its public name, exactly as the docs show them.
      {
        find: /^@streamll\/sink-kafka$/,
        replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)),
      },
    ],
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Starts the harness broker when it is not running (and stops it afterwards only in that case).
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites share one broker; running files in sequence keeps them from stepping on each other.
    fileParallelism: false,
  },
});
