import {
  configure,
  flush,
  MemorySink,
  type StreamllEvent,
  type StreamllLogger,
  type StreamllOptions,
  shutdown,
  streamllEventSchema,
} from "@streamll/core";

export const warnings: string[] = [];
export const logger: StreamllLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

/** streamll configured with one memory sink that flushes quickly. */
export function setup(options: Omit<StreamllOptions, "sinks"> = {}): MemorySink {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger, ...options });
  return sink;
}

/** Every event delivered so far, each checked against the event schema. */
export async function collect(sink: MemorySink): Promise<StreamllEvent[]> {
  await flush(2_000);
  const events = sink.events;
  for (const event of events) streamllEventSchema.parse(event);
  return events;
}

export async function teardown(): Promise<void> {
  await shutdown(2_000);
  warnings.length = 0;
}

export const types = (events: readonly StreamllEvent[]) => events.map((e) => e.event_type);
