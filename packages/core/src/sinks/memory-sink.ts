import { timerDelay } from "../delivery/backoff";
import type { EncodedEvent, Sink } from "../delivery/sink";
import { SinkError } from "../errors";
import type { StreamllEvent } from "../events/event-schema";
import { timeoutArgument, v, validateOptions } from "../options/schema";

/** Options for {@link MemorySink}. */
export interface MemorySinkOptions {
  /**
   * Events kept. When a batch would exceed it, the oldest events are discarded and counted in
   * {@link MemorySink.overflowed}, so a long-running process cannot grow without bound. Default 10 000: room
   * for a test's events, while a forgotten sink in a busy process holds at most 10 000 JSON strings (a few MB).
   */
  maxEvents?: number;
  /** Sink name shown in metrics. Default `memory`. */
  name?: string;
}

/** `MemorySinkOptions` as the constructor checks them. */
export const memorySinkOptionsSchema = v.object<MemorySinkOptions>({
  maxEvents: v.integer({ min: 1 }).optional(),
  name: v.string({ min: 1 }).optional(),
});

/** Rejection of {@link MemorySink.waitFor} when the condition was not met in time. */
export class WaitForTimeoutError extends Error {
  readonly code = "WAIT_FOR_TIMEOUT";

  constructor(message: string) {
    super(message);
    this.name = "WaitForTimeoutError";
  }
}

interface Waiter {
  /** Returns true once the waiter settled. */
  check(): boolean;
  /** Called by clear(): the next check scans from the first event received after it. */
  reset(): void;
}

const DEFAULT_MAX_EVENTS = 10_000;
const DEFAULT_WAIT_MS = 5_000;
/** `waitFor`'s first argument: how many events to wait for, or a predicate. */
const WAIT_CONDITION = v.union(v.integer({ min: 0 }), v.fn("a predicate function"));

/**
 * Keeps delivered events in memory: for tests and for in-process consumers. It holds each event's wire JSON
 * (the encoded event: the JSON string plus its routing fields), not parsed objects, and parses on read: a test
 * sees exactly what a broker would receive (sanitised, capped, redacted), and a held event costs about its
 * JSON bytes. Each read of {@link MemorySink.events} parses again and returns fresh objects.
 */
export class MemorySink implements Sink {
  readonly name: string;
  /** The configured capacity. */
  readonly maxEvents: number;

  // A deque as array + head offset: dropping the oldest is O(1) and the array is compacted now and then. A
  // dropped slot is emptied at once, so what the sink keeps alive is the events it holds, never more.
  private entries: (EncodedEvent | undefined)[] = [];
  private head = 0;
  private receivedCount = 0;
  private overflowCount = 0;
  private closed = false;
  private readonly waiters = new Set<Waiter>();

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: MemorySinkOptions = {}) {
    validateOptions("MemorySink", memorySinkOptionsSchema, options);
    this.maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    this.name = options.name ?? "memory";
  }

  /** Events currently held, oldest first, each parsed from its wire JSON. */
  get events(): StreamllEvent[] {
    const out: StreamllEvent[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (entry !== undefined) out.push(parse(entry));
    }
    return out;
  }

  /** The encoded events currently held (wire JSON, byte size and routing fields), oldest first. */
  get encoded(): EncodedEvent[] {
    const out: EncodedEvent[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  /** Number of events currently held. */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** Events received since construction or the last {@link clear}, including those discarded by overflow. */
  get received(): number {
    return this.receivedCount;
  }

  /** Events discarded because more than `maxEvents` were held. */
  get overflowed(): number {
    return this.overflowCount;
  }

  /** True once {@link close} was called. Events stay readable after close. */
  get isClosed(): boolean {
    return this.closed;
  }

  async send(batch: readonly EncodedEvent[]): Promise<void> {
    if (this.closed) {
      throw new SinkError(`sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    for (const encoded of batch) this.entries.push(encoded);
    this.receivedCount += batch.length;
    const excess = this.size - this.maxEvents;
    if (excess > 0) {
      this.entries.fill(undefined, this.head, this.head + excess);
      this.head += excess;
      this.overflowCount += excess;
      if (this.head > 1024 && this.head * 2 > this.entries.length) {
        this.entries = this.entries.slice(this.head);
        this.head = 0;
      }
    }
    this.notify();
  }

  /** Removes every held event and resets `received` and `overflowed`. Pending `waitFor` calls keep waiting. */
  clear(): void {
    this.entries = [];
    this.head = 0;
    this.receivedCount = 0;
    this.overflowCount = 0;
    for (const waiter of this.waiters) waiter.reset();
  }

  /**
   * Waits until at least `count` events were received since construction or the last {@link clear}, then
   * resolves with the events held. Rejects with {@link WaitForTimeoutError} after `timeoutMs` (default 5 000).
   */
  waitFor(count: number, timeoutMs?: number): Promise<StreamllEvent[]>;
  /**
   * Waits until a held or newly received event matches `predicate`, then resolves with that event (the first
   * match, oldest first). Rejects with {@link WaitForTimeoutError} after `timeoutMs` (default 5 000).
   */
  waitFor(predicate: (event: StreamllEvent) => boolean, timeoutMs?: number): Promise<StreamllEvent>;
  waitFor(
    condition: number | ((event: StreamllEvent) => boolean),
    timeoutArg?: number,
  ): Promise<StreamllEvent[] | StreamllEvent> {
    let timeoutMs: number;
    try {
      validateOptions("MemorySink.waitFor()", WAIT_CONDITION, condition, "condition");
      timeoutMs = timerDelay(timeoutArgument("MemorySink.waitFor()", timeoutArg, DEFAULT_WAIT_MS));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Entries before this position were already tested by a predicate waiter; the position is in "received"
      // units so that overflow and compaction do not make us skip or repeat events.
      let scannedReceived = this.receivedCount - this.size;

      const settle = (fn: () => void): true => {
        if (timer !== undefined) clearTimeout(timer);
        this.waiters.delete(waiter);
        fn();
        return true;
      };

      const waiter: Waiter = {
        check: () => {
          if (typeof condition === "number") {
            if (this.receivedCount >= condition) return settle(() => resolve(this.events));
            return false;
          }
          const firstHeldReceived = this.receivedCount - this.size;
          const start = Math.max(scannedReceived, firstHeldReceived) - firstHeldReceived + this.head;
          for (let i = start; i < this.entries.length; i++) {
            const entry = this.entries[i];
            if (entry === undefined) continue;
            const event = parse(entry);
            let matched: boolean;
            try {
              matched = condition(event);
            } catch (error) {
              return settle(() => reject(error));
            }
            if (matched) return settle(() => resolve(event));
          }
          scannedReceived = this.receivedCount;
          return false;
        },
        reset: () => {
          scannedReceived = 0;
        },
      };

      if (waiter.check()) return;
      this.waiters.add(waiter);
      timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const what =
          typeof condition === "number" ? `${condition} events` : "an event matching the predicate";
        reject(
          new WaitForTimeoutError(
            `MemorySink ${this.name}: timed out after ${timeoutMs} ms waiting for ${what} (received ${this.receivedCount})`,
          ),
        );
      }, timeoutMs);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter.check();
  }
}

/**
 * The encoder guarantees valid JSON; parsing it shows exactly what a broker receives: sanitised values, caps
 * and redaction applied. Not cached: a cached object per event would cost several times the JSON it came from.
 */
function parse(entry: EncodedEvent): StreamllEvent {
  return JSON.parse(entry.json) as StreamllEvent;
}
