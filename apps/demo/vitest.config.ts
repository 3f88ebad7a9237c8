import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against the core's source so a core change needs no rebuild to be tested here.
    alias: {
      "@streamll/core/internal": fileURLToPath(
        new URL("../../packages/core/src/internal.ts", import.meta.url),
      ),
      "@streamll/core": fileURLToPath(new URL("../../packages/core/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
