import { defineConfig } from "tsup";

// Cloud SDKs are optional peer dependencies, loaded at run time only by the adapter that needs them.
const external = [
  "@streamll/core",
  "kafkajs",
  "aws-msk-iam-sasl-signer-js",
  "@aws-sdk/client-kafka",
  "@azure/identity",
];

export default defineConfig([
  {
    entry: ["src/index.ts", "src/msk.ts", "src/confluent.ts", "src/event-hubs.ts"],
    format: ["esm", "cjs"],
    // `import.meta.url` in the CommonJS build (the kafkajs request queue fix resolves kafkajs from it).
    shims: true,
    dts: true,
    sourcemap: false,
    // Both builds run at once: the bin's files are kept out of this one's clean-up.
    clean: ["!cli.js"],
    target: "node22",
    external,
  },
  {
    // The `streamll-kafka` bin: ESM only, no type declarations (it is not an import path).
    entry: ["src/cli.ts"],
    format: ["esm"],
    dts: false,
    sourcemap: false,
    clean: false,
    target: "node22",
    external,
  },
]);
