import { defineConfig } from "tsup";

// The AWS SDK is an optional peer dependency: loaded at run time only by the Amazon MQ IAM provider.
const external = ["@aws-sdk/client-sts", "amqplib", "@streamll/core"];

export default defineConfig([
  {
    entry: ["src/index.ts", "src/amazon-mq.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: false,
    // Both builds run at once: the bin's files are kept out of this one's clean-up.
    clean: ["!cli.js"],
    target: "node22",
    external,
  },
  {
    // The `streamll-rabbitmq` bin: ESM only, no type declarations (it is not an import path).
    entry: ["src/cli.ts"],
    format: ["esm"],
    dts: false,
    sourcemap: false,
    clean: false,
    target: "node22",
    external,
  },
]);
