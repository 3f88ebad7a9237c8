// Does a sink let the process end after shutdown()? The parent side starts a peer (one that accepts TCP and
// never answers, or a closed port), runs a worker process (a `serveShutdown` script of a sink package, on its
// built dist) that sends events to it and shuts down, and times the worker's exit from the moment its
// shutdown(t) resolved. Shared by the sink packages' shutdown tests.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

/** A TCP server on 127.0.0.1 that accepts connections and never writes a byte. */
export async function startSilentPeer() {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that was just free: nothing listens there (connections are refused). */
export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Runs `worker` (a Node script) with `env` added to this process's environment, killing it (SIGKILL) if it is
 * still running after `killAfterMs`. `onStdout(text)` sees the stdout read so far each time more arrives.
 * Resolves with its exit code, the signal that ended it, its stdout and stderr, and when it exited
 * (`exitedAt`, `performance.now()`). Shared by the shutdown and exit-without-shutdown tests.
 */
export function spawnBounded(worker, env, killAfterMs, onStdout) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk.toString();
      onStdout?.(stdout);
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk.toString();
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, exitedAt: performance.now() });
    });
  });
}

/**
 * Runs `worker` against 127.0.0.1:`port`, calling `shutdown(shutdownMs)` once its sink has been trying to
 * deliver for a moment. Resolves with how long the process lived after shutdown resolved (`exitAfterMs`),
 * its exit code, the resources still active right after shutdown (`active`) and its stderr.
 */
export async function runShutdownWorker(worker, { port, shutdownMs, killAfterMs = 60_000 }) {
  let resolvedAt;
  const run = await spawnBounded(
    worker,
    { STREAMLL_SHUTDOWN_PORT: String(port), STREAMLL_SHUTDOWN_MS: String(shutdownMs) },
    killAfterMs,
    (stdout) => {
      if (resolvedAt === undefined && stdout.includes("shutdown-resolved\n")) resolvedAt = performance.now();
    },
  );
  return {
    code: run.code,
    signal: run.signal,
    exitAfterMs: resolvedAt === undefined ? undefined : run.exitedAt - resolvedAt,
    active: /^active: (.*)$/m.exec(run.stdout)?.[1] ?? "",
    stderr: run.stderr,
  };
}

/**
 * The worker side: configures streamll (the worker's `@streamll/core`: `{ configure, emit, shutdown }`) with
 * the sink `createSink(port)` returns, emits events, lets the sink try to deliver them, then shuts down and
 * reports on stdout. The process must then end by itself.
 */
export async function serveShutdown({ configure, emit, shutdown }, createSink) {
  const port = Number(process.env.STREAMLL_SHUTDOWN_PORT);
  const shutdownMs = Number(process.env.STREAMLL_SHUTDOWN_MS);
  configure({ sinks: [createSink(port)] });
  for (let i = 0; i < 20; i++) emit("shutdown.probe", { i });
  // Long enough for the sink to be inside a connection attempt (or between attempts) when shutdown starts.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await shutdown(shutdownMs);
  process.stdout.write("shutdown-resolved\n");
  // What is still alive once shutdown resolved (stdio aside), for the test's failure message.
  setImmediate(() => {
    const active = process
      .getActiveResourcesInfo()
      .filter((kind) => kind !== "TTYWrap" && kind !== "PipeWrap");
    process.stdout.write(`active: ${active.join(",")}\n`);
  });
}

/**
 * The parent side as a whole suite, the same for every sink: `worker` (a `serveShutdown` script) pointed at a
 * peer that accepts TCP and never answers, then at a closed port, must exit by itself within `shutdownMs` +
 * 1 s of its `shutdown(shutdownMs)` resolving. `vitest` is the test file's own import of "vitest" (this file
 * sits outside the packages, where vitest cannot be resolved).
 */
export function shutdownExitSuite(vitest, sinkName, worker, shutdownMs = 500) {
  const { afterAll, beforeAll, describe, expect, it } = vitest;
  describe(`${sinkName}: the process ends after shutdown()`, () => {
    let silent;
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
      const run = await runShutdownWorker(worker, { port: await port(), shutdownMs });
      const report = `exit code ${run.code}, alive after shutdown: ${run.active}\n${run.stderr.slice(-2_000)}`;
      expect(run.exitAfterMs, report).toBeDefined();
      expect(run.code, report).toBe(0);
      expect(run.exitAfterMs, report).toBeLessThan(shutdownMs + 1_000);
    });
  });
}
