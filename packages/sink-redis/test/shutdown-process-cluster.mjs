// As shutdown-process.mjs, with `cluster: true`: a cluster client also opens connections its disconnect()
// does not reach (the slot refresh), which must not keep the process alive either.
import * as core from "@streamll/core";
import { serveShutdown } from "../../../test-support/shutdown-exit.mjs";
import { RedisSink } from "../dist/index.js";

await serveShutdown(core, (port) => new RedisSink({ url: `redis://127.0.0.1:${port}`, cluster: true }));
