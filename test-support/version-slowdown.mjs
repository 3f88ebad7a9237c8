// Two releases of one module recorded through a sink, for the sinks' CLI tests: what a CLI reads back must be
// the stored events, and `streamll compare` must flag the second release as the slower one. The second
// release adds a 30 ms lookup; both run concurrently in every round so a stall of the machine slows both alike.
// `core` is @streamll/core and `expect` is vitest's, passed in so this file resolves neither.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const QaV1 = class Qa {
  async forward(question) {
    await sleep(4);
    return question.trim();
  }
};
const QaV2 = class Qa {
  async forward(question) {
    await sleep(4);
    await this.lookup();
    return question.trim();
  }
  async lookup() {
    await sleep(30);
  }
};

/** Calls of each release. */
export const ROUNDS = 16;
/** Events recorded: one version event per release plus a start and an end per call. */
export const EVENTS = 2 + ROUNDS * 2 * 2;

/** The non-empty lines of a CLI's output. */
export const lines = (stdout) => stdout.split("\n").filter((line) => line !== "");

/** Records both releases through `sink` (with version tracking) and shuts streamll down, delivering them. */
export async function recordTwoReleases(core, sink, shutdownMs = 10_000) {
  core.configure({
    sinks: [{ sink, delivery: { flushIntervalMs: 20 } }],
    versionTracking: { gitCommit: "abc1234", moduleVersion: "qa-service@2.0.0" },
    includeInputs: false,
    includeOutputs: false,
  });
  const modules = [QaV1, QaV2].map((Module) => core.instrument(new Module()));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? modules : [...modules].reverse();
    await Promise.all(order.map((module) => module.forward(`question ${round}`)));
  }
  await core.shutdown(shutdownMs);
}

/** Asserts that `jsonl` holds exactly the recorded events and that `compareEvents` flags the slowdown. */
export function expectSlowdownFlagged(core, expect, jsonl) {
  const fast = core.computeCodeSignature(QaV1, { method: "forward" });
  const slow = core.computeCodeSignature(QaV2, { method: "forward" });
  const events = lines(jsonl).map((line) => JSON.parse(line));
  expect(events).toHaveLength(EVENTS);
  const report = core.compareEvents(events);
  expect(report.invalid_lines).toBe(0);
  expect(report.versions.filter((v) => v.module === "Qa").map((v) => v.code_signature)).toEqual([fast, slow]);
  const qa = report.comparisons.find((comparison) => comparison.module === "Qa");
  expect(qa).toMatchObject({ baseline: fast, candidate: slow });
  expect(qa?.duration).toMatchObject({ verdict: "regression", n_baseline: ROUNDS, n_candidate: ROUNDS });
}
