import type { StreamllEvent } from "../events/event-schema";
import { MemorySink } from "../sinks/memory-sink";
import type { StreamllLogger } from "./configure";
import { configure, flush } from "./runtime";

/** The warnings the runtime logged through {@link logger} (tests clear it when they need to). */
export const warnings: string[] = [];
export const logger: StreamllLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

/** Configures the runtime with one MemorySink flushed every millisecond, logging into {@link warnings}. */
export function setup(): MemorySink {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger });
  return sink;
}

/** Every event `sink` holds once the runtime has flushed. */
export async function collect(sink: MemorySink): Promise<StreamllEvent[]> {
  await flush(2_000);
  return sink.events;
}
