import { afterEach, describe, expect, it } from "vitest";
import type { StreamllEvent } from "../events/event-schema";
import { instrument } from "./instrument";
import { flush, shutdown } from "./runtime";
import { collect, setup, warnings } from "./runtime-test-support";
import { trace } from "./trace";

// The stream an instrumented async generator function returns is streamll's wrapper, not a native generator:
// trace() and instrumented functions must still see it as the stream it is and keep their span open over it.

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

async function* words(): AsyncGenerator<string> {
  for (const word of ["a ", "b ", "c"]) {
    await Promise.resolve();
    yield word;
  }
}

function of(events: StreamllEvent[], operation: string | null, type: string): StreamllEvent | undefined {
  return events.find((e) => e.operation === operation && e.event_type === type);
}

describe("an instrumented stream", () => {
  it("reports itself as an async generator", () => {
    setup();
    const stream = instrument(words)();
    expect(Object.prototype.toString.call(stream)).toBe("[object AsyncGenerator]");
  });
});

describe("trace() around an instrumented stream", () => {
  const blocks: [string, () => AsyncGenerator<string> | Promise<AsyncGenerator<string>>][] = [
    ["returns it", () => instrument(words)()],
    ["resolves to it", async () => instrument(words)()],
  ];
  it.each(blocks)(
    "keeps the span open until a block that %s is read, then ends with token_count",
    async (_how, block) => {
      const sink = setup();
      const stream = await trace("generate", block);
      await flush(2_000);
      // Nothing is read yet: the trace span must still be open.
      expect(of(sink.events, "generate", "end")).toBeUndefined();

      const chunks: string[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(chunks).toEqual(["a ", "b ", "c"]);

      const events = await collect(sink);
      const traceStart = of(events, "generate", "start");
      const traceEnd = of(events, "generate", "end");
      const innerStart = of(events, null, "start");
      const innerEnd = of(events, null, "end");
      expect(traceEnd?.data).toMatchObject({ token_count: 3, cancelled: false });
      expect(innerEnd?.data).toMatchObject({ token_count: 3, outputs: { output: "a b c" } });
      // The instrumented stream's events nest under the trace span and end before it.
      expect(innerStart?.parent_span_id).toBe(traceStart?.span_id);
      expect(innerStart?.execution_id).toBe(traceStart?.execution_id);
      expect(events.indexOf(innerEnd as StreamllEvent)).toBeLessThan(
        events.indexOf(traceEnd as StreamllEvent),
      );
      // Only one end per span: the trace block is not also recorded as ending when it returned.
      expect(events.filter((e) => e.event_type === "end")).toHaveLength(2);
      expect(warnings).toEqual([]);
    },
  );

  it("ends as cancelled when the consumer stops early", async () => {
    const sink = setup();
    const stream = trace("generate", () => instrument(words)());
    for await (const _chunk of stream) break;
    const events = await collect(sink);
    expect(of(events, "generate", "end")?.data).toMatchObject({ token_count: 1, cancelled: true });
  });
});

describe("an instrumented function returning an instrumented stream", () => {
  it("keeps its span open until the stream is read", async () => {
    const sink = setup();
    const streamWords = instrument(words);
    const generate = instrument(function generate() {
      return streamWords();
    });
    const stream = generate();
    await flush(2_000);
    expect(sink.events.filter((e) => e.event_type === "end")).toEqual([]);
    const chunks: string[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks).toEqual(["a ", "b ", "c"]);
    const events = await collect(sink);
    const outerStart = events.find((e) => e.module_name === "generate" && e.event_type === "start");
    const outerEnd = events.find((e) => e.module_name === "generate" && e.event_type === "end");
    const innerStart = events.find((e) => e.module_name === "words" && e.event_type === "start");
    expect(outerEnd?.data).toMatchObject({ token_count: 3, cancelled: false });
    expect(innerStart?.parent_span_id).toBe(outerStart?.span_id);
  });
});
