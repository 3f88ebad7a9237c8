// Replaying a failed execution: finds the most recent execution whose top-level call failed, reads all of
// its events back (one partition: the key is the execution id) and prints what happened, step by step.
import {
  type ExecutionReplay,
  type KafkaConnectionOptions,
  KafkaEventReader,
  type ReplayedSpan,
} from "@streamll/sink-kafka";

/** One line per span, indented by depth: module, status, duration, error, streamed text. */
export function renderReplay(replay: ExecutionReplay): string {
  const lines: string[] = [`execution ${replay.executionId}: ${replay.failed ? "FAILED" : "ok"}`];
  const visit = (span: ReplayedSpan, depth: number): void => {
    const name = span.operation ?? `${span.moduleName}.${span.methodName}`;
    const duration = span.durationMs === null ? "running" : `${span.durationMs.toFixed(1)} ms`;
    let line = `${"  ".repeat(depth + 1)}${name} [${span.status}, ${duration}]`;
    if (span.error !== null) line += ` ${span.error.type}: ${span.error.message}`;
    lines.push(line);
    for (const [field, text] of Object.entries(span.streamedText)) {
      lines.push(`${"  ".repeat(depth + 2)}streamed ${field}: ${JSON.stringify(text)}`);
    }
    for (const event of span.customEvents) {
      lines.push(`${"  ".repeat(depth + 2)}${event.event_type} ${JSON.stringify(event.data)}`);
    }
    for (const child of span.children) visit(child, depth + 1);
  };
  for (const root of replay.roots) visit(root, 0);
  return lines.join("\n");
}

export async function replayLatestFailure(
  connection: KafkaConnectionOptions,
  options: { groupId: string; topic?: string },
): Promise<{ replay: ExecutionReplay; text: string } | null> {
  const reader = new KafkaEventReader({
    ...connection,
    groupId: options.groupId,
    ...(options.topic === undefined ? {} : { topic: options.topic }),
    fromBeginning: true,
    stopAtEnd: true,
  });
  try {
    // A top-level failure is an `error` event of a span without parent.
    let latest: { executionId: string; at: number } | null = null;
    await reader.run(({ event }) => {
      if (event.event_type !== "error" || event.parent_span_id !== null) return;
      const at = Date.parse(event.timestamp);
      if (latest === null || at >= latest.at) latest = { executionId: event.execution_id, at };
    });
    const found = latest as { executionId: string; at: number } | null;
    if (found === null) return null;
    // Read from a minute before the failure: enough for the whole call in this example.
    const replay = await reader.replayExecution(found.executionId, { from: found.at - 60_000 });
    return { replay, text: renderReplay(replay) };
  } finally {
    await reader.close();
  }
}
