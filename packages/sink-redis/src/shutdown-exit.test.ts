// After shutdown(t) resolves, nothing of the RedisSink keeps the process alive: a worker process
// (test/shutdown-process.mjs, on the built package) sends events to a peer that accepts TCP and never answers,
// or to a closed port, shuts down, and must exit by itself within t + 1 s of shutdown resolving; standalone and
// in cluster mode.
import { fileURLToPath } from "node:url";
import * as vitest from "vitest";
import { shutdownExitSuite } from "../../../test-support/shutdown-exit.mjs";

shutdownExitSuite(
  vitest,
  "RedisSink",
  fileURLToPath(new URL("../test/shutdown-process.mjs", import.meta.url)),
);
shutdownExitSuite(
  vitest,
  "RedisSink (cluster: true)",
  fileURLToPath(new URL("../test/shutdown-process-cluster.mjs", import.meta.url)),
);
