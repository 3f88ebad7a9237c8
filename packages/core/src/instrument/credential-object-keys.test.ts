import { afterEach, describe, expect, it } from "vitest";
import type { StreamllEvent } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import type { StreamllOptions } from "./configure";
import { instrument } from "./instrument";
import { configure, flush, shutdown } from "./runtime";
import { emit } from "./trace";

const SECRET = "sk-proj-PLANTEDSECRET1234567890abcdef";
const quiet = { warn: () => undefined, error: () => undefined };

afterEach(async () => {
  await shutdown(2_000);
});

/** Emits the probe's events: a credential as an object key in emit() data and in a call's argument. */
async function run(options: Omit<StreamllOptions, "sinks">): Promise<StreamllEvent[]> {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger: quiet, ...options });
  emit("clients", { byKey: { [SECRET]: "client-1" }, asMap: new Map([[SECRET, "client-1"]]) });
  const cacheLookup = instrument(async function cacheLookup(cache: Record<string, unknown>) {
    return Object.keys(cache).length;
  });
  await cacheLookup({ [SECRET]: { model: "gpt" } });
  await flush(2_000);
  const wire = sink.encoded.map((e) => e.json).join("\n");
  expect(wire).not.toContain("PLANTED");
  return sink.encoded.map((e) => JSON.parse(e.json) as StreamllEvent);
}

describe("a credential used as an object key", () => {
  it.each([
    ["the default redaction (fast path)", {}],
    ["an event filter (general path)", { eventFilter: () => true }],
  ] as const)("is scrubbed in emit() data and call inputs with %s", async (_name, options) => {
    const [clients, start] = await run(options);
    expect(clients?.data).toEqual({
      byKey: { "sk-[REDACTED]": "[REDACTED]" },
      // A Map entry under a redacted name loses its value, as the object's property does.
      asMap: { $map: [["sk-[REDACTED]", "[REDACTED]"]] },
    });
    expect(start?.event_type).toBe("start");
    // The name as given contains `SECRET`, so the value is redacted too.
    expect(start?.data).toEqual({ inputs: { "sk-[REDACTED]": "[REDACTED]" } });
  });
});
