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
  /** Events dropped of executions not held (none of their events kept yet): see {@link dropUnheld}. */
  private readonly unheldDrops = new Map<string, number>();

  constructor(readonly limits: ViewerLimits) {}

  /** Adds one event's JSON line to its execution, dropping old executions past the limits. O(1) amortised. */
  add(executionId: string, line: string, eventType: string): AddResult {
    const known = this.executions.get(executionId);
    const lines = known?.lines.length ?? 0;
    const bytes = known?.bytes ?? 0;
    const { maxEventsPerExecution, maxBytes } = this.limits;
    // One execution may use a quarter of the budget (twice that for its span tree), so a runaway stream of
    // tokens cannot push every other execution out.
    const cap = STRUCTURAL.has(eventType) ? 2 : 1;
    if (lines >= maxEventsPerExecution * cap || bytes + line.length > (maxBytes / 4) * cap) {
      this.droppedCount += 1;
      if (known !== undefined) known.dropped += 1;
      else this.dropUnheld(executionId);
      return { stored: false, evicted: [] };
    }
    let execution = known;
    if (execution === undefined) {
      // Created only now that it holds an event: an execution with nothing kept would count against
      // `maxExecutions` (pushing out executions the page shows) while showing nothing itself.
      const dropped = this.unheldDrops.get(executionId) ?? 0;
      this.unheldDrops.delete(executionId);
      execution = { lines: [], bytes: 0, dropped };
      this.executions.set(executionId, execution);
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

  /**
   * Counts a dropped event of an execution not held (nothing of it kept yet), so that once one of its events
   * is kept the page shows what it lost. At most `maxExecutions` are remembered, the oldest forgotten first:
   * a stream of new executions whose every event is dropped must not grow memory or the status message.
   */
  private dropUnheld(executionId: string): void {
    const dropped = (this.unheldDrops.get(executionId) ?? 0) + 1;
    // Deleted and set again, so the one dropped from longest ago is first in line to be forgotten.
    this.unheldDrops.delete(executionId);
    this.unheldDrops.set(executionId, dropped);
    if (this.unheldDrops.size > this.limits.maxExecutions) {
      const oldest = this.unheldDrops.keys().next();
      if (oldest.done !== true) this.unheldDrops.delete(oldest.value);
    }
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

  /**
   * Per execution held, events dropped by the per-execution limits (only executions that dropped some): at most
   * `maxExecutions` entries.
   */
  droppedByExecution(): Record<string, number> {
    // fromEntries defines own properties: an id such as `__proto__` is a key, not the object's prototype.
    return Object.fromEntries(
      Array.from(this.executions, ([id, execution]) => [id, execution.dropped] as const).filter(
        ([, dropped]) => dropped > 0,
      ),
    );
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
