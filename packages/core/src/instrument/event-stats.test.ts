import { afterEach, describe, expect, it } from "vitest";
import { MemorySink } from "../sinks/memory-sink";
import { configure, flush, getEventStats, getMetrics, shutdown } from "./runtime";
import { emit } from "./trace";

const quiet = { warn: () => undefined, error: () => undefined };

afterEach(async () => {
  await shutdown();
});

describe("getEventStats", () => {
  it("counts events the filter declined, separately from sink metrics", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], logger: quiet, eventFilter: (event) => event.event_type !== "noise" });
    emit("noise", { n: 1 });
    emit("signal", { n: 2 });
    emit("noise", { n: 3 });
    await flush();
    expect(getEventStats()).toMatchObject({ filtered: 2, droppedRedactFailed: 0, droppedInternalError: 0 });
    expect(sink.events.map((event) => event.event_type)).toEqual(["signal"]);
    expect(getMetrics()[0]).toMatchObject({ emitted: 1, delivered: 1, dropped: 0 });
  });

  it("counts events filter lists declined, before any pipeline sees them", async () => {
    const sink = new MemorySink();
    configure({ sinks: [sink], logger: quiet, eventFilter: { excludeEventTypes: ["token"] } });
    emit("token", { text: "a" });
    emit("note", { n: 1 });
    emit("token", { text: "b" });
    await flush();
    expect(getEventStats().filtered).toBe(2);
    expect(sink.events.map((event) => event.event_type)).toEqual(["note"]);
    expect(getMetrics()[0]).toMatchObject({ emitted: 1, delivered: 1, dropped: 0 });
  });

  it("counts events a redact function suppressed and events it failed on", async () => {
    const sink = new MemorySink();
    configure({
      sinks: [sink],
      logger: quiet,
      redact: (event) => {
        if (event.event_type === "secret") return null;
        if (event.event_type === "broken") throw new Error("redactor bug");
        return event;
      },
    });
    emit("secret");
    emit("broken");
    emit("broken");
    emit("fine");
    await flush();
    expect(getEventStats()).toEqual({
      filtered: 0,
      suppressedByRedact: 1,
      droppedRedactFailed: 2,
      droppedInternalError: 0,
    });
    expect(sink.events.map((event) => event.event_type)).toEqual(["fine"]);
  });

  it("starts from zero after shutdown", async () => {
    configure({ sinks: [new MemorySink()], logger: quiet, eventFilter: () => false });
    emit("dropped");
    expect(getEventStats().filtered).toBe(1);
    await shutdown();
    expect(getEventStats().filtered).toBe(0);
  });
});
