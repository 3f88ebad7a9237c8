// A process that sends events with a RabbitMQSink and shuts down; the shutdown test times its exit. Runs the
// built package (`pnpm build` first).
import * as core from "@streamll/core";
import { serveShutdown } from "../../../test-support/shutdown-exit.mjs";
import { RabbitMQSink } from "../dist/index.js";

await serveShutdown(core, (port) => new RabbitMQSink({ url: `amqp://127.0.0.1:${port}` }));
