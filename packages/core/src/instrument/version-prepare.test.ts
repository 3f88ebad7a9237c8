import { afterEach, describe, expect, it, vi } from "vitest";
import { MemorySink } from "../sinks/memory-sink";
import { instrument } from "./instrument";
import { configure, flush, getRuntime, shutdown } from "./runtime";

afterEach(async () => {
  await shutdown(2_000);
});

class Retriever {
  async forward(query: string): Promise<string[]> {
    return [query];
  }
}

function instrumentedFunction() {
  return instrument(async function rank(items: string[]) {
    return items.slice().sort();
  });
}

describe("version tracking off the first call's hot path", () => {
  it("computes code signatures and process versions at configure() for targets instrumented before it", async () => {
    const Instrumented = instrument(Retriever);
    const rank = instrumentedFunction();
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], versionTracking: true });
    const tracker = getRuntime().config.versionTracker!;
    const compute = vi.spyOn(tracker as unknown as { compute: () => unknown }, "compute");
    const processInfo = vi.spyOn(
      tracker as unknown as { computeProcessInfo: () => unknown },
      "computeProcessInfo",
    );
    await new Instrumented().forward("q");
    await rank(["b", "a"]);
    expect(compute).not.toHaveBeenCalled();
    expect(processInfo).not.toHaveBeenCalled();
    await flush(2_000);
    const versions = sink.events.filter((e) => e.event_type === "version");
    expect(versions.map((e) => e.module_name).sort()).toEqual(["Retriever", "rank"]);
    expect(sink.events.every((e) => e.event_type === "version" || e.code_signature !== null)).toBe(true);
  });

  it("computes them at instrument() when version tracking is already on", async () => {
    configure({ sinks: [new MemorySink()], versionTracking: true });
    const tracker = getRuntime().config.versionTracker!;
    const compute = vi.spyOn(tracker as unknown as { compute: () => unknown }, "compute");
    class Writer {
      async forward(text: string): Promise<string> {
        return text.toUpperCase();
      }
    }
    const Instrumented = instrument(Writer);
    expect(compute).toHaveBeenCalledTimes(1);
    await new Instrumented().forward("x");
    expect(compute).toHaveBeenCalledTimes(1);
  });
});
