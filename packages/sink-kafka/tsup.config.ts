import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/msk.ts", "src/confluent.ts", "src/event-hubs.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node22",
  // Cloud SDKs are optional peer dependencies, loaded at run time only by the adapter that needs them.
  external: [
    "@streamll/core",
    "kafkajs",
    "aws-msk-iam-sasl-signer-js",
    "@aws-sdk/client-kafka",
    "@azure/identity",
  ],
});
