import { v, validateOptions } from "../options/schema";

/** Options for {@link EventDeduplicator}. */
export interface EventDeduplicatorOptions {
  /**
   * Event ids remembered. When full, the oldest id is forgotten first, so memory stays bounded: about 90 bytes
   * per remembered id for streamll's 12-character ids (≈ 9 MB at the default). Default 100 000.
   */
  maxIds?: number;
  /**
   * Forget an id this long after it was remembered, even when the window is not full. Default: no age limit
   * (only `maxIds` bounds the window).
   */
  maxAgeMs?: number;
}

const eventDeduplicatorOptionsSchema = v.object<EventDeduplicatorOptions>({
  maxIds: v.integer({ min: 1 }).optional(),
  maxAgeMs: v.integer({ min: 1 }).optional(),
});

/** Counters of an {@link EventDeduplicator}. */
export interface EventDeduplicatorStats {
  /** Ids currently remembered. */
  readonly size: number;
  /** Calls to {@link EventDeduplicator.handleOnce} that ran the handler (first deliveries). */
  readonly handled: number;
  /** Calls skipped because the id was already handled within the window (duplicates). */
  readonly duplicates: number;
  /** Ids forgotten to stay within `maxIds` or `maxAgeMs`; a duplicate arriving after that is handled again. */
  readonly evicted: number;
}

const DEFAULT_MAX_IDS = 100_000;

/**
 * De-duplicates events by `event_id` for consumers of an at-least-once reader. Every streamll reader may
 * deliver an event again — after a crash, a rebalance or a claim of an idle pending entry — and the
 * redelivered event carries the same `event_id`. Remembers the ids handled recently in a bounded window (by
 * count, optionally by age), oldest forgotten first.
 *
 * An id is remembered only after its handler succeeded, so a handler that throws leaves the event to be
 * delivered and handled again; a skipped duplicate never hides a failure.
 *
 * The window is per process: two processes of one consumer group each keep their own. Size it to cover how
 * far apart a duplicate can arrive (a crash hand-over redelivers events the dead reader had fetched but not
 * acknowledged, usually within one batch and the claim/session timeout).
 *
 * @example
 * const dedupe = new EventDeduplicator({ maxIds: 50_000 });
 * await reader.run((record) => dedupe.handleOnce(record.event.event_id, () => store(record.event)));
 */
/** The second argument: anything with `now()` (Date, a test clock). */
const nowClockSchema = v.custom<{ now(): number }>(
  "an object with now()",
  (value) => typeof (value as { now?: unknown } | null)?.now === "function",
);

export class EventDeduplicator {
  /** The configured window size. */
  readonly maxIds: number;
  /** The configured age limit, if any. */
  readonly maxAgeMs: number | undefined;
  // Insertion order is age order: the first key is always the oldest, so eviction is O(1).
  readonly #seenAt = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #now: () => number;
  #handled = 0;
  #duplicates = 0;
  #evicted = 0;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: EventDeduplicatorOptions = {}, clock: { now(): number } = Date) {
    validateOptions("EventDeduplicator", eventDeduplicatorOptionsSchema, options);
    validateOptions("EventDeduplicator", nowClockSchema, clock, "clock");
    this.maxIds = options.maxIds ?? DEFAULT_MAX_IDS;
    this.maxAgeMs = options.maxAgeMs;
    this.#now = () => clock.now();
  }

  /** Whether `eventId` was handled (remembered) within the window. Does not count as a check. */
  has(eventId: string): boolean {
    this.#expire();
    return this.#seenAt.has(eventId);
  }

  /** Remembers `eventId` as handled. Use with {@link has} when {@link handleOnce} does not fit. */
  remember(eventId: string): void {
    // Re-remembering moves the id to the young end: it was just seen again.
    this.#seenAt.delete(eventId);
    this.#seenAt.set(eventId, this.#now());
    while (this.#seenAt.size > this.maxIds) this.#evictOldest();
  }

  /**
   * Runs `handle` unless `eventId` was already handled within the window. Resolves `true` when the handler
   * ran, `false` for a skipped duplicate. The id is remembered only after `handle` resolved; if it throws,
   * the error propagates and the id stays unknown. A second call for an id whose first call is still running
   * waits for it, then runs only if the first one failed.
   */
  async handleOnce(eventId: string, handle: () => unknown): Promise<boolean> {
    const running = this.#inFlight.get(eventId);
    if (running !== undefined) await running.catch(() => undefined);
    if (this.has(eventId)) {
      this.#duplicates += 1;
      return false;
    }
    const call = (async () => handle())();
    this.#inFlight.set(eventId, call);
    try {
      await call;
    } finally {
      if (this.#inFlight.get(eventId) === call) this.#inFlight.delete(eventId);
    }
    this.remember(eventId);
    this.#handled += 1;
    return true;
  }

  /** A snapshot of the counters. */
  getStats(): EventDeduplicatorStats {
    return {
      size: this.#seenAt.size,
      handled: this.#handled,
      duplicates: this.#duplicates,
      evicted: this.#evicted,
    };
  }

  /** Forgets every id (counters are kept). */
  clear(): void {
    this.#seenAt.clear();
  }

  #expire(): void {
    if (this.maxAgeMs === undefined) return;
    const oldestAllowed = this.#now() - this.maxAgeMs;
    for (const seenAt of this.#seenAt.values()) {
      if (seenAt > oldestAllowed) return;
      this.#evictOldest();
    }
  }

  #evictOldest(): void {
    const oldest = this.#seenAt.keys().next();
    if (oldest.done) return;
    this.#seenAt.delete(oldest.value);
    this.#evicted += 1;
  }
}
