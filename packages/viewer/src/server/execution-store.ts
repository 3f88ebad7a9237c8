import type { ViewerLimits } from "../protocol";

export const DEFAULT_LIMITS: Readonly<ViewerLimits> = {
  maxExecutions: 1_000,
  maxBytes: 64 * 1024 * 1024,
  maxEventsPerExecution: 5_000,
};

/** Event types that make up the span tree: kept past `maxEventsPerExecution` (up to twice it). */
const STRUCTURAL = new Set(["start", "end", "error", "version"]);

interface StoredExecution {
  readonly lines: string[];
  bytes: number;
  /** Events of this execution dropped by `maxEventsPerExecution` or by its share of `maxBytes`. */
  dropped: number;
}

/** The outcome of {@link ExecutionStore.add}. */
export interface AddResult {
  /** False when the event was dropped by a per-execution limit. */
  readonly stored: boolean;
  /** Executions removed (oldest first) to make room; the page drops them too. */
  readonly evicted: readonly string[];
}

/**
 * The last N executions, each as the JSON lines of its events in arrival order. Executions are ordered by
 * their first event, so the oldest is dropped first. Lines are kept as received (no parsed copies): the page
 * parses them, and the version comparison parses them on demand.
 */
export class ExecutionStore {
  private readonly executions = new Map<string, StoredExecution>();
  private totalBytes = 0;
  private totalEvents = 0;
  private evictedCount = 0;
  private droppedCount = 0;

  constructor(readonly limits: ViewerLimits) {}

  /** Adds one event's JSON line to its execution, dropping old executions past the limits. O(1) amortised. */
  add(executionId: string, line: string, eventType: string): AddResult {
    let execution = this.executions.get(executionId);
    if (execution === undefined) {
      execution = { lines: [], bytes: 0, dropped: 0 };
      this.executions.set(executionId, execution);
    }
    const { maxEventsPerExecution, maxBytes } = this.limits;
    // One execution may use a quarter of the budget (twice that for its span tree), so a runaway stream of
    // tokens cannot push every other execution out.
    const cap = STRUCTURAL.has(eventType) ? 2 : 1;
    if (
      execution.lines.length >= maxEventsPerExecution * cap ||
      execution.bytes + line.length > (maxBytes / 4) * cap
    ) {
      execution.dropped += 1;
      this.droppedCount += 1;
      return { stored: false, evicted: [] };
    }
    execution.lines.push(line);
    execution.bytes += line.length;
    this.totalBytes += line.length;
    this.totalEvents += 1;
    const evicted: string[] = [];
    for (const [id, oldest] of this.executions) {
      if (this.executions.size <= this.limits.maxExecutions && this.totalBytes <= maxBytes) break;
      if (id === executionId) continue;
      this.executions.delete(id);
      this.totalBytes -= oldest.bytes;
      this.totalEvents -= oldest.lines.length;
      this.evictedCount += 1;
      evicted.push(id);
    }
    return { stored: true, evicted };
  }

  /** Every kept line, oldest execution first, each execution's events in arrival order. */
  *lines(): IterableIterator<string> {
    for (const execution of this.executions.values()) yield* execution.lines;
  }

  /**
   * The lines held now, to be read later while more arrive (a page's snapshot is written as fast as it reads).
   * Each execution's array is only ever appended to, never changed, so its length now pins this moment without
   * copying a string; an execution evicted meanwhile stays readable until the snapshot is done with it.
   */
  snapshot(): Iterable<string> {
    const parts = Array.from(this.executions.values(), (execution) => ({
      lines: execution.lines,
      count: execution.lines.length,
    }));
    return {
      *[Symbol.iterator]() {
        for (const { lines, count } of parts) for (let i = 0; i < count; i++) yield lines[i] as string;
      },
    };
  }

  /** Per execution, events dropped by the per-execution limits (only executions that dropped some). */
  droppedByExecution(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, execution] of this.executions) if (execution.dropped > 0) out[id] = execution.dropped;
    return out;
  }

  get stats(): {
    executions: number;
    events: number;
    bytes: number;
    evictedExecutions: number;
    droppedEvents: number;
  } {
    return {
      executions: this.executions.size,
      events: this.totalEvents,
      bytes: this.totalBytes,
      evictedExecutions: this.evictedCount,
      droppedEvents: this.droppedCount,
    };
  }
}
