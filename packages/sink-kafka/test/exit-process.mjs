// A program that sends events with a KafkaSink and simply ends, without shutdown(): the exit test checks that
// it exits by itself and that its events arrived. Runs the built package (`pnpm build` first). The sink keeps
// its default kafkajs retries, so an unreachable broker exercises the retry schedule users get.
import { readFileSync } from "node:fs";
import * as core from "@streamll/core";
import { exitProgram } from "../../../test-support/exit-without-shutdown.mjs";
import { KafkaSink } from "../dist/index.js";

const env = process.env;
// SASL_SSL (PLAIN) when a CA file is given: the sink's sockets are then TLS sockets.
const secured = env.STREAMLL_EXIT_CA_FILE
  ? {
      tls: { ca: readFileSync(env.STREAMLL_EXIT_CA_FILE) },
      sasl: {
        mechanism: "plain",
        username: env.STREAMLL_EXIT_SASL_USERNAME,
        password: env.STREAMLL_EXIT_SASL_PASSWORD,
      },
    }
  : {};
const sink = new KafkaSink({
  brokers: env.STREAMLL_EXIT_BROKERS.split(","),
  topic: env.STREAMLL_EXIT_TOPIC,
  createTopic: { numPartitions: 1 },
  connectionTimeoutMs: 1_000,
  logLevel: "nothing",
  ...secured,
});
await exitProgram({ core, sink, env, exitFlushTimeoutMs: 10_000, sendOptions: { attempt: 1 } });
