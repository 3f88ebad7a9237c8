// Memory and large inputs (issue 12): the heap an event holds while it waits in the delivery queue, against
// the bytes of its JSON (target ≤ 1.5 × JSON + 200 B); and what a plain object of 1,000,000 keys passed as
// event data, or as an instrumented call's argument, costs the caller (target ≤ 5 ms: only the kept keys are
// walked). The sanitiser walks only the first `maxObjectKeys` keys, but V8 lists every key of an object before
// the first one can be read (Object.keys, for…in and Reflect.ownKeys alike), so the object's size still costs
// the caller; an array, a Map and a Set are read item by item and cost only what is kept, shown for contrast.
import { performance } from "node:perf_hooks";

export const title =
  "heap held per queued event against its JSON, and the caller's cost of a 1,000,000-key object";

const QUEUED = 5_000;

/** A sink whose sends wait until `release()`: everything emitted stays queued or in flight. */
function stalledSink() {
  const waiting = [];
  return {
    name: "stalled",
    send: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => Promise.resolve(),
    release() {
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

/** Event data of an ordinary step (~0.5 KB of JSON with the envelope). */
const ordinary = (i) => ({
  step: "retrieve",
  query: `what does the retriever return for question number ${i} of the evaluation set?`,
  k: 3,
  documents: ["doc-1842: streams and consumer groups", "doc-77: retries", "doc-903: backpressure"],
  score: 0.8125,
  cached: false,
});

async function measureHeap({ core, harness, result, log }) {
  const sink = stalledSink();
  core.configure({ sinks: [sink] });
  let measured;
  await core.trace("bench-heap", async () => {
    await harness.yieldToLoop();
    const before = harness.heapAfterGc();
    const pendingBefore = core.getMetrics()[0];
    for (let i = 0; i < QUEUED; i++) core.emit("step", ordinary(i));
    await harness.yieldToLoop();
    const after = harness.heapAfterGc();
    const m = core.getMetrics()[0];
    const events = m.pending - pendingBefore.pending;
    measured = {
      events,
      dropped: m.dropped,
      heapPerEvent: (after - before) / events,
      jsonPerEvent: (m.pendingBytes - pendingBefore.pendingBytes) / events,
    };
  });
  sink.release();
  const releaser = setInterval(() => sink.release(), 1);
  await core.flush(60_000);
  clearInterval(releaser);
  await core.shutdown(10_000);
  const limit = 1.5 * measured.jsonPerEvent + 200;
  result("heap.queued_event.json_bytes", measured.jsonPerEvent, "JSON bytes per queued event");
  result("heap.queued_event.held_bytes", measured.heapPerEvent, "heap held per queued event", limit);
  result(
    "heap.queued_event.held_per_json_ratio",
    measured.heapPerEvent / measured.jsonPerEvent,
    "heap / JSON bytes",
  );
  result("heap.queued_event.queued", measured.events, "events queued (default delivery settings)");
  result("heap.queued_event.dropped", measured.dropped, "dropped while queuing");
  log(
    `${measured.events} queued: ${measured.heapPerEvent.toFixed(0)} B heap per event of ${measured.jsonPerEvent.toFixed(0)} B JSON`,
  );
}

async function measureLargeData({ core, harness, result, log }) {
  const big = {};
  for (let i = 0; i < 1_000_000; i++) big[`key_${i}`] = i;
  // For contrast: containers whose items can be read one by one without listing them all first.
  const list = Array.from({ length: 1_000_000 }, (_, i) => i);
  const map = new Map(Array.from({ length: 1_000_000 }, (_, i) => [`key_${i}`, i]));
  const sink = harness.readingSink();
  core.configure({ sinks: [sink] });
  const takes = core.instrument(async function takesBig(input) {
    return typeof input;
  });
  let listed = 0;
  // Each round times every case once; a case that returns a promise is timed until it settles. The last two
  // are the floor for any code that reads a plain object's keys, on the same object in the same rounds:
  // listing them all, and a for…in loop that stops after the first key (V8 lists them all before the first).
  const cases = [
    ["emit_1m_keys", "emit() with 1,000,000-key data", 5, () => core.emit("big", big)],
    ["call_arg_1m_keys", "instrumented call, 1,000,000-key argument", 5, () => takes(big)],
    [
      "emit_1m_item_array",
      "emit() with a 1,000,000-item array in data",
      undefined,
      () => core.emit("big", { list }),
    ],
    [
      "emit_1m_entry_map",
      "emit() with a 1,000,000-entry Map in data",
      undefined,
      () => core.emit("big", { map }),
    ],
    [
      "object_keys_1m",
      "Object.keys() of the same 1,000,000-key object, without streamll",
      undefined,
      () => {
        listed += Object.keys(big).length;
      },
    ],
    [
      "for_in_first_key_1m",
      "for…in over the same object, stopping at its first key, without streamll",
      undefined,
      () => {
        for (const key in big) {
          listed += key.length;
          break;
        }
      },
    ],
  ];
  const samples = new Map(cases.map(([key]) => [key, []]));
  try {
    await core.trace("bench-large", async () => {
      for (let r = -1; r < 5; r++) {
        for (const [key, , , run] of cases) {
          const start = performance.now();
          const pending = run();
          if (pending instanceof Promise) await pending;
          if (r >= 0) samples.get(key).push(performance.now() - start);
        }
        await harness.yieldToLoop();
      }
    });
    await core.flush(60_000);
  } finally {
    await core.shutdown(10_000);
  }
  for (const [key, label, target] of cases) {
    result(`large_data.${key}.mean_ms`, harness.mean(samples.get(key)), `${label} (mean)`, target);
  }
  const times = (key) =>
    samples
      .get(key)
      .map((n) => n.toFixed(2))
      .join(", ");
  log(
    `emit ${times("emit_1m_keys")} ms; call ${times("call_arg_1m_keys")} ms; Object.keys ${times("object_keys_1m")} ms; ` +
      `for…in to the first key ${times("for_in_first_key_1m")} ms (${listed} keys listed)`,
  );
}

export async function run(context) {
  await measureHeap(context);
  await measureLargeData(context);
}
