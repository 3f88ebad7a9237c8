import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/amazon-mq.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node22",
  // The AWS SDK is an optional peer dependency: loaded at run time only by the Amazon MQ IAM provider.
  external: ["@aws-sdk/client-sts", "amqplib", "@streamll/core"],
});
