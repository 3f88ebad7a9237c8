import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["*.test.ts"],
    // The rehearsal installs tarballs with npm and runs tsc: minutes on a busy two-core machine.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
