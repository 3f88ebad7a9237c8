import { afterEach, describe, expect, it } from "vitest";
import { encodeEvent } from "../events/encode-event";
import type { StreamllEvent } from "../events/event-schema";
import { testEvent } from "../events/test-event";
import { MemorySink } from "../sinks/memory-sink";
import type { StreamllOptions } from "./configure";
import { configure, flush, shutdown } from "./runtime";
import { emit, trace } from "./trace";

const quiet = { warn: () => undefined, error: () => undefined };

afterEach(async () => {
  await shutdown(2_000);
});

/** The `data` of every event `run` emits, as sinks receive it. */
async function dataOf(options: Omit<StreamllOptions, "sinks">, run: () => void): Promise<unknown[]> {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger: quiet, ...options });
  run();
  await flush(2_000);
  return sink.encoded.map((e) => (JSON.parse(e.json) as StreamllEvent).data);
}

function emitNonObjects(): void {
  // emit() is typed for objects; JavaScript callers pass anything.
  const loose = emit as (eventType: string, data: unknown) => void;
  loose("passages", ["a", "b"]);
  loose("note", "hello");
  emit("when", new Date(0) as never);
  trace("step", () => undefined, { data: new Date(0) as never });
}

const WRAPPED = [
  { $value: ["a", "b"] },
  { $value: "hello" },
  { $value: "1970-01-01T00:00:00.000Z" },
  { $value: "1970-01-01T00:00:00.000Z" },
];

describe("data that is not an object", () => {
  it('is wrapped as {"$value": …} by emit() and trace(), as the docs and encodeEvent say', async () => {
    const data = await dataOf({}, emitNonObjects);
    // The trace block adds its `end` event after the `start` that carries its data.
    expect(data.slice(0, 4)).toEqual(WRAPPED);
    const encoded = encodeEvent(testEvent({ event_type: "x", data: ["a", "b"] as never }));
    expect((JSON.parse(encoded.json) as StreamllEvent).data).toEqual(WRAPPED[0]);
  });

  it("is wrapped the same way on the general encoding path (a redact function and an event filter)", async () => {
    const withFunction = await dataOf({ redact: (event) => event }, emitNonObjects);
    expect(withFunction.slice(0, 4)).toEqual(WRAPPED);
    await shutdown(2_000);
    const withFilter = await dataOf({ eventFilter: () => true }, emitNonObjects);
    expect(withFilter.slice(0, 4)).toEqual(WRAPPED);
  });

  it("keeps a user's own `value` key apart from the marker", async () => {
    expect(await dataOf({}, () => emit("x", { value: 1 }))).toEqual([{ value: 1 }]);
  });
});
