// Does a program that uses a sink and simply ends, without shutdown(), exit by itself once core's `beforeExit`
// flush delivered its events? The parent side runs a child program (a sink package's test/exit-process.mjs, on
// its built dist) and checks that it ended by itself; the child side (`exitProgram`) sends the events, with the
// sink used directly or through configure(). Shared by the sink packages' exit tests.
import { spawnBounded, startSilentPeer } from "./shutdown-exit.mjs";

/** A behaviour bound: a child still running after this never exits by itself. */
export const EXIT_KILL_AFTER_MS = 20_000;

/**
 * Runs `worker` with `env` added to this process's environment, killing it (SIGKILL) if it is still running
 * after `killAfterMs`. Resolves with its exit code, the signal that ended it and its stderr.
 */
export async function runExitProgram(worker, env, { killAfterMs = EXIT_KILL_AFTER_MS } = {}) {
  const { code, signal, stderr } = await spawnBounded(worker, env, killAfterMs);
  return { code, signal, stderr };
}

/**
 * `runExitProgram` with the environment `envFor(port)` builds for a peer on 127.0.0.1:`port` that accepts TCP
 * and never answers; the peer is closed once the program ended.
 */
export async function runWithSilentPeer(worker, envFor, options) {
  const peer = await startSilentPeer();
  try {
    return await runExitProgram(worker, envFor(peer.port), options);
  } finally {
    await peer.close();
  }
}

/**
 * Asserts that `run` ended by itself (not killed at the bound) with exit code 0. `expect` is vitest's (this
 * file sits outside the packages, where vitest cannot be resolved).
 */
export function expectExited(expect, run, killAfterMs = EXIT_KILL_AFTER_MS) {
  const report = `exit code ${run.code}, signal ${run.signal}\n${run.stderr.slice(-2_000)}`;
  expect(
    run.signal,
    `killed after ${killAfterMs} ms: the program never ended by itself. ${report}`,
  ).toBeNull();
  expect(run.code, report).toBe(0);
}

/**
 * The `i` of every event in `payloads` (events as JSON text, as a sink delivers them), sorted.
 */
export function eventIndexes(payloads) {
  return payloads
    .map((payload) => JSON.parse(payload))
    .map((event) => Number(event.data?.i))
    .sort((a, b) => a - b);
}

/**
 * `[0, 1, …, count - 1]`: the indexes of `count` events the program sent.
 */
export const range = (count) => Array.from({ length: count }, (_, i) => i);

/**
 * The child side: sends `STREAMLL_EXIT_COUNT` events with `sink` and returns, leaving the program to end by
 * itself (no shutdown()). With `STREAMLL_EXIT_DIRECT=1` the sink is used directly (connect() first if it has
 * one, then send() and close()); otherwise it is configured (exit flush deadline `STREAMLL_EXIT_FLUSH_MS`, else
 * `exitFlushTimeoutMs`) and the events emitted. `STREAMLL_EXIT_IDLE_MS` pauses before the end. `core` is the
 * child's `@streamll/core`.
 */
export async function exitProgram({
  core,
  sink,
  env = process.env,
  exitFlushTimeoutMs = 5_000,
  sendOptions = {},
}) {
  const count = Number(env.STREAMLL_EXIT_COUNT);
  if (env.STREAMLL_EXIT_DIRECT === "1") {
    // The sink used directly: each awaited call must hold the process until it settles, though the sink's
    // connections do not (Node ends a program whose only pending work is unref'd, mid-await, with code 13).
    if (typeof sink.connect === "function") await sink.connect();
    const result = await sink.send(encodedEvents(core, count), {
      signal: new AbortController().signal,
      ...sendOptions,
    });
    if (result !== undefined) throw new Error(`send reported failures: ${JSON.stringify(result)}`);
    await sink.close();
  } else {
    core.configure({
      sinks: [sink],
      exitFlushTimeoutMs: Number(env.STREAMLL_EXIT_FLUSH_MS ?? exitFlushTimeoutMs),
    });
    for (let i = 0; i < count; i++) core.emit("exit.probe", { i });
  }
  // With a pause the batch is delivered before the program ends, leaving an idle, open connection behind.
  const idleMs = Number(env.STREAMLL_EXIT_IDLE_MS ?? 0);
  if (idleMs > 0) await new Promise((resolve) => setTimeout(resolve, idleMs));
  // For the test's failure message: what still holds the process long after it should have ended.
  setTimeout(() => {
    process.stderr.write(`still alive: ${process.getActiveResourcesInfo().join(",")}\n`);
  }, 10_000).unref();
}

/**
 * `count` events as `send()` takes them, for a program that uses the sink directly, without `configure()`.
 * `core` is the caller's `@streamll/core`.
 */
export function encodedEvents(core, count) {
  return Array.from({ length: count }, (_, i) =>
    core.encodeEvent({
      schema_version: core.SCHEMA_VERSION,
      event_id: `exit-direct-${i}`,
      execution_id: "exit-direct",
      span_id: "exit-direct",
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: "exit",
      method_name: "direct",
      event_type: "exit.probe",
      operation: null,
      data: { i },
      tags: {},
      module_version: null,
      code_signature: null,
      git_commit: null,
    }),
  );
}
