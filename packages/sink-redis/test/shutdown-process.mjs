// A process that sends events with a RedisSink and shuts down; the shutdown test times its exit. Runs the built
// package (`pnpm build` first).
import * as core from "@streamll/core";
import { serveShutdown } from "../../../test-support/shutdown-exit.mjs";
import { RedisSink } from "../dist/index.js";

await serveShutdown(core, (port) => new RedisSink({ url: `redis://127.0.0.1:${port}` }));
