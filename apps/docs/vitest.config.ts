import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One Chromium crawls every page of the built site; generous on a busy two-core machine.
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
