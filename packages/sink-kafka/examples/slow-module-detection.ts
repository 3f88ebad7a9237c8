// Slow-module detection: p95 of `duration_ms` per module and version, from the `end` events of every
// instrumented call, flagging those above a budget. A new version that got slower shows up as its own row.
import { type KafkaConnectionOptions, KafkaEventReader } from "@streamll/sink-kafka";

export interface ModuleLatency {
  readonly moduleName: string;
  /** The `trace()` block or `instrument()` operation; `null` for plain module calls. */
  readonly operation: string | null;
  /**
   * `module_version` (set by version tracking), else `code_signature`, else the module's `version` tag
   * (`instrument(fn, { tags: { version: "v2" } })`), else `unversioned`.
   */
  readonly version: string;
  readonly calls: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly slow: boolean;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export async function detectSlowModules(
  connection: KafkaConnectionOptions,
  options: { groupId: string; topic?: string; p95BudgetMs: number; minCalls?: number },
): Promise<ModuleLatency[]> {
  const durations = new Map<
    string,
    { moduleName: string; operation: string | null; version: string; values: number[] }
  >();
  // Delivery is at-least-once: skip an event seen before (same event_id).
  const seen = new Set<string>();
  const reader = new KafkaEventReader({
    ...connection,
    groupId: options.groupId,
    ...(options.topic === undefined ? {} : { topic: options.topic }),
    fromBeginning: true,
    stopAtEnd: true,
  });
  try {
    await reader.run(({ event }) => {
      const duration = event.data.duration_ms;
      if (event.event_type !== "end" || typeof duration !== "number" || seen.has(event.event_id)) return;
      seen.add(event.event_id);
      const version = event.module_version ?? event.code_signature ?? event.tags.version ?? "unversioned";
      const key = JSON.stringify([event.module_name, event.operation, version]);
      let entry = durations.get(key);
      if (entry === undefined) {
        entry = { moduleName: event.module_name, operation: event.operation, version, values: [] };
        durations.set(key, entry);
      }
      entry.values.push(duration);
    });
  } finally {
    await reader.close();
  }
  const minCalls = options.minCalls ?? 1;
  const rows: ModuleLatency[] = [];
  for (const { moduleName, operation, version, values } of durations.values()) {
    if (values.length < minCalls) continue;
    const sorted = [...values].sort((a, b) => a - b);
    const p95Ms = percentile(sorted, 95);
    rows.push({
      moduleName,
      operation,
      version,
      calls: sorted.length,
      p50Ms: percentile(sorted, 50),
      p95Ms,
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      slow: p95Ms > options.p95BudgetMs,
    });
  }
  return rows.sort((a, b) => b.p95Ms - a.p95Ms);
}
