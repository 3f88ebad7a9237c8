// A program that sends events with a RabbitMQSink and simply ends, without shutdown(): the exit test checks
// that it exits by itself and that its events arrived. Runs the built package (`pnpm build` first).
import * as core from "@streamll/core";
import { exitProgram } from "../../../test-support/exit-without-shutdown.mjs";
import { RabbitMQSink } from "../dist/index.js";

const env = process.env;
const sink = new RabbitMQSink({
  url: env.STREAMLL_EXIT_URL,
  exchange: env.STREAMLL_EXIT_EXCHANGE,
  queue: { name: env.STREAMLL_EXIT_QUEUE },
  connectTimeoutMs: Number(env.STREAMLL_EXIT_CONNECT_TIMEOUT_MS ?? 1_000),
});
// Used directly, the sink is connect()ed before its send().
await exitProgram({ core, sink, env });
