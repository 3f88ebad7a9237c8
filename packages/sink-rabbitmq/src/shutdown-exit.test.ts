// After shutdown(t) resolves, nothing of the RabbitMQSink keeps the process alive: a worker process (test/shutdown-process.mjs,
// on the built package) sends events to a peer that accepts TCP and never answers, or to a closed port, shuts
// down, and must exit by itself within t + 1 s of shutdown resolving.
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, runShutdownWorker, startSilentPeer } from "../../../test-support/shutdown-exit.mjs";

const WORKER = fileURLToPath(new URL("../test/shutdown-process.mjs", import.meta.url));
const SHUTDOWN_MS = 500;

describe("RabbitMQSink: the process ends after shutdown()", () => {
  let silent: Awaited<ReturnType<typeof startSilentPeer>>;
  beforeAll(async () => {
    silent = await startSilentPeer();
  });
  afterAll(async () => {
    await silent.close();
  });

  it.each([
    ["a peer that accepts TCP and never answers", () => Promise.resolve(silent.port)],
    ["a closed port", closedPort],
  ])("pointed at %s", async (_name, port) => {
    const run = await runShutdownWorker(WORKER, { port: await port(), shutdownMs: SHUTDOWN_MS });
    const report = `exit code ${run.code}, alive after shutdown: ${run.active}\n${run.stderr.slice(-2_000)}`;
    expect(run.exitAfterMs, report).toBeDefined();
    expect(run.code, report).toBe(0);
    expect(run.exitAfterMs!, report).toBeLessThan(SHUTDOWN_MS + 1_000);
  });
});
