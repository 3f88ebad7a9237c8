// A program that sends events with a RedisSink and simply ends, without shutdown(): the exit test checks that
// it exits by itself and that its events arrived. Runs the built package (`pnpm build` first).
import * as core from "@streamll/core";
import { exitProgram } from "../../../test-support/exit-without-shutdown.mjs";
import { RedisSink } from "../dist/index.js";

const env = process.env;
const sink = new RedisSink({
  url: env.STREAMLL_EXIT_URL,
  stream: env.STREAMLL_EXIT_STREAM,
  cluster: env.STREAMLL_EXIT_CLUSTER === "1",
  connectTimeoutMs: Number(env.STREAMLL_EXIT_CONNECT_TIMEOUT_MS ?? 1_000),
});
await exitProgram({ core, sink, env });
