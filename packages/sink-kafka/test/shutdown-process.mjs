// A process that sends events with a KafkaSink and shuts down; the shutdown test times its exit. Runs the built
// package (`pnpm build` first).
import * as core from "@streamll/core";
import { serveShutdown } from "../../../test-support/shutdown-exit.mjs";
import { KafkaSink } from "../dist/index.js";

await serveShutdown(core, (port) => new KafkaSink({ brokers: [`127.0.0.1:${port}`] }));
