import { afterEach, describe, expect, it } from "vitest";
import { decodeEvent } from "../events/decode-event";
import type { StreamllEvent } from "../events/event-schema";
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
      droppedInvalidEdit: 0,
      droppedInternalError: 0,
    });
    expect(sink.events.map((event) => event.event_type)).toEqual(["fine"]);
  });

  it("drops and counts what a redact function returns that is not a valid event: a Promise, {}, a broken field", async () => {
    const sink = new MemorySink();
    const warnings: string[] = [];
    const returned: Record<string, (event: StreamllEvent) => unknown> = {
      promise: async (event) => event,
      empty: () => ({}),
      array: () => [],
      "no-id": ({ event_id: _, ...rest }) => rest,
      "numeric-timestamp": (event) => ({ ...event, timestamp: 1 }),
      "empty-module": (event) => ({ ...event, module_name: "" }),
      "new-major": (event) => ({ ...event, schema_version: "x" }),
      "edited-ok": (event) => ({ ...event, module_name: "renamed", tags: { team: "t" }, data: { kept: 1 } }),
    };
    configure({
      sinks: [sink],
      logger: { warn: (message: string) => warnings.push(message), error: () => undefined },
      redact: (event) => (returned[event.event_type]?.(event) ?? event) as StreamllEvent,
    });
    for (const type of Object.keys(returned)) emit(type, { n: 1 });
    emit("untouched");
    await flush();
    expect(getEventStats()).toMatchObject({ droppedRedactFailed: 7, droppedInvalidEdit: 0 });
    expect(sink.events.map((event) => event.event_type)).toEqual(["edited-ok", "untouched"]);
    expect(sink.events[0]).toMatchObject({ module_name: "renamed", tags: { team: "t" }, data: { kept: 1 } });
    for (const { json } of sink.encoded) expect(decodeEvent(json).ok).toBe(true);
    expect(warnings.join("\n")).toContain("a Promise (redact must be synchronous)");
  });

  it("sends what an eventFilter edits only when the event stays valid; a throwing filter's edits are not sent", async () => {
    const sink = new MemorySink();
    configure({
      sinks: [sink],
      logger: quiet,
      eventFilter: (event) => {
        const edited = event as unknown as Record<string, unknown>;
        if (event.event_type === "renamed") edited.module_name = "edited";
        if (event.event_type === "broken") edited.event_id = 5;
        if (event.event_type === "throws") {
          edited.module_name = "half-edited";
          throw new Error("filter bug");
        }
        return true;
      },
    });
    emit("renamed");
    emit("broken");
    emit("throws");
    await flush();
    expect(getEventStats()).toMatchObject({ droppedInvalidEdit: 1, filtered: 0 });
    expect(sink.events.map((event) => [event.event_type, event.module_name])).toEqual([
      ["renamed", "edited"],
      ["throws", "app"],
    ]);
  });

  it("starts from zero after shutdown", async () => {
    configure({ sinks: [new MemorySink()], logger: quiet, eventFilter: () => false });
    emit("dropped");
    expect(getEventStats().filtered).toBe(1);
    await shutdown();
    expect(getEventStats().filtered).toBe(0);
  });
});
