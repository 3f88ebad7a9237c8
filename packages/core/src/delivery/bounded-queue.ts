import type { OverflowPolicy } from "./delivery-types";
import type { EncodedEvent } from "./sink";

/** Limits of a `BoundedQueue`. Both bounds apply to queued plus reserved (in-flight) events. */
export interface BoundedQueueOptions {
  /** Maximum number of events held. */
  maxCount: number;
  /** Maximum sum of `EncodedEvent.bytes` held. */
  maxBytes: number;
  /** What to discard when a push would exceed a bound. Default `drop-oldest`. */
  overflowPolicy?: OverflowPolicy;
}

/** What happened to a pushed event. */
export type PushResult =
  /** Stored. `evicted` lists the oldest queued events discarded to make room (`queue-full`), usually none. */
  | { readonly accepted: true; readonly evicted: readonly EncodedEvent[] }
  /** Not stored: alone larger than `maxBytes` (`too-large`), or no room under the policy (`queue-full`). */
  | { readonly accepted: false; readonly reason: "too-large" | "queue-full" };

/** Events moved from the head of the queue into the reserved (in-flight) area by `take`. */
export interface TakenEvents {
  readonly events: EncodedEvent[];
  /** Failed send attempts so far, per event. */
  readonly attempts: number[];
  /** The sequence number given to `push`, per event. */
  readonly seqs: number[];
  readonly bytes: number;
}

const NOTHING_EVICTED: readonly EncodedEvent[] = Object.freeze([]);
const ACCEPTED: PushResult = Object.freeze({ accepted: true, evicted: NOTHING_EVICTED });
const INITIAL_CAPACITY = 16;

/**
 * A ring-buffer deque of encoded events, bounded by count and by bytes, with O(1) amortised push and shift.
 *
 * Events taken for sending stay accounted ("reserved") until they are released (delivered or dropped) or
 * requeued at the head after a failure, so the bounds cover everything a sink still owes. Overflow only ever
 * evicts queued events, never reserved ones: an event being sent cannot be dropped underneath its send.
 * Each slot also carries the event's failed-attempt count and sequence number, kept in parallel arrays so a
 * push allocates nothing.
 */
export class BoundedQueue {
  readonly maxCount: number;
  readonly maxBytes: number;
  readonly overflowPolicy: OverflowPolicy;

  private events: (EncodedEvent | undefined)[];
  private attempts: number[];
  private seqs: number[];
  private head = 0;
  private length = 0;
  private queuedByteCount = 0;
  private reservedCountValue = 0;
  private reservedByteCount = 0;

  constructor(options: BoundedQueueOptions) {
    this.maxCount = options.maxCount;
    this.maxBytes = options.maxBytes;
    this.overflowPolicy = options.overflowPolicy ?? "drop-oldest";
    this.events = new Array<EncodedEvent | undefined>(INITIAL_CAPACITY);
    this.attempts = new Array<number>(INITIAL_CAPACITY).fill(0);
    this.seqs = new Array<number>(INITIAL_CAPACITY).fill(0);
  }

  /** Events held: queued plus reserved. */
  get size(): number {
    return this.length + this.reservedCountValue;
  }

  /** Bytes held: queued plus reserved. */
  get bytes(): number {
    return this.queuedByteCount + this.reservedByteCount;
  }

  /** Events waiting to be taken. */
  get queuedCount(): number {
    return this.length;
  }

  get queuedBytes(): number {
    return this.queuedByteCount;
  }

  /** Events taken and not yet released or requeued. */
  get reservedCount(): number {
    return this.reservedCountValue;
  }

  get reservedBytes(): number {
    return this.reservedByteCount;
  }

  /** Sequence number of the oldest queued event (the queue is kept sorted by it), or `undefined` when empty. */
  get headSeq(): number | undefined {
    return this.length === 0 ? undefined : this.seqs[this.head];
  }

  /** Adds `event` at the tail, applying the byte/count bounds and the overflow policy. */
  push(event: EncodedEvent, seq = 0): PushResult {
    const bytes = event.bytes;
    if (bytes > this.maxBytes) return { accepted: false, reason: "too-large" };
    if (this.length + this.reservedCountValue + 1 <= this.maxCount && this.bytes + bytes <= this.maxBytes) {
      this.pushBack(event, 0, seq);
      return ACCEPTED;
    }
    // Reserved events cannot be evicted, so when they alone leave no room the new event has to go.
    const roomAfterEvictingAll =
      this.reservedCountValue + 1 <= this.maxCount && this.reservedByteCount + bytes <= this.maxBytes;
    if (this.overflowPolicy === "drop-newest" || !roomAfterEvictingAll) {
      return { accepted: false, reason: "queue-full" };
    }
    const evicted: EncodedEvent[] = [];
    while (this.length + this.reservedCountValue + 1 > this.maxCount || this.bytes + bytes > this.maxBytes) {
      const oldest = this.shift();
      if (oldest === undefined) break;
      evicted.push(oldest);
    }
    this.pushBack(event, 0, seq);
    return { accepted: true, evicted };
  }

  /**
   * Moves events from the head into the reserved area: at most `maxCount` of them and at most `maxBytes`
   * together, but always at least one when the queue is not empty (an event larger than `maxBytes` must be
   * filtered out before it is pushed).
   */
  take(maxCount: number, maxBytes: number): TakenEvents {
    const ring = this.events;
    const mask = ring.length - 1;
    let count = 0;
    let bytes = 0;
    while (count < this.length && count < maxCount) {
      const size = (ring[(this.head + count) & mask] as EncodedEvent).bytes;
      if (count > 0 && bytes + size > maxBytes) break;
      bytes += size;
      count++;
    }
    // Copied with native slices (at most two: the taken run may wrap around the ring), not event by event:
    // a full batch is taken on the caller's thread when an enqueue completes it.
    const start = this.head;
    const end = start + count;
    const firstEnd = Math.min(end, ring.length);
    const wrapped = end - firstEnd;
    const events = ring.slice(start, firstEnd) as EncodedEvent[];
    const attempts = this.attempts.slice(start, firstEnd);
    const seqs = this.seqs.slice(start, firstEnd);
    ring.fill(undefined, start, firstEnd); // let the events be collected once delivered
    if (wrapped > 0) {
      for (let i = 0; i < wrapped; i++) {
        events.push(ring[i] as EncodedEvent);
        attempts.push(this.attempts[i] as number);
        seqs.push(this.seqs[i] as number);
      }
      ring.fill(undefined, 0, wrapped);
    }
    this.head = end & mask;
    this.length -= count;
    this.queuedByteCount -= bytes;
    this.reservedCountValue += count;
    this.reservedByteCount += bytes;
    return { events, attempts, seqs, bytes };
  }

  /** Forgets `count` reserved events of `bytes` total: they were delivered or dropped. */
  release(count: number, bytes: number): void {
    this.reservedCountValue = Math.max(0, this.reservedCountValue - count);
    this.reservedByteCount = Math.max(0, this.reservedByteCount - bytes);
  }

  /**
   * Puts reserved events back at the head, sorted by sequence number together with any events requeued
   * earlier, so the queue stays in emission order even when several batches fail out of order.
   * `events`, `attempts` and `seqs` are parallel arrays in ascending `seqs` order.
   */
  requeue(events: readonly EncodedEvent[], attempts: readonly number[], seqs: readonly number[]): void {
    if (events.length === 0) return;
    let bytes = 0;
    for (const event of events) bytes += event.bytes;
    this.release(events.length, bytes);
    const lastSeq = seqs[seqs.length - 1]!;
    // Older events already at the head (requeued by another batch) must stay interleaved in order.
    const prefixEvents: EncodedEvent[] = [];
    const prefixAttempts: number[] = [];
    const prefixSeqs: number[] = [];
    while (this.length > 0 && this.seqs[this.head]! < lastSeq) {
      prefixAttempts.push(this.attempts[this.head]!);
      prefixSeqs.push(this.seqs[this.head]!);
      prefixEvents.push(this.shift()!);
    }
    let i = events.length - 1;
    let j = prefixEvents.length - 1;
    while (i >= 0 || j >= 0) {
      if (j < 0 || (i >= 0 && seqs[i]! > prefixSeqs[j]!)) {
        this.pushFront(events[i]!, attempts[i]!, seqs[i]!);
        i--;
      } else {
        this.pushFront(prefixEvents[j]!, prefixAttempts[j]!, prefixSeqs[j]!);
        j--;
      }
    }
  }

  /** True when the queued (not reserved) events fill a batch of `maxCount` events or `maxBytes` bytes. */
  hasFullBatch(maxCount: number, maxBytes: number): boolean {
    return this.length >= maxCount || this.queuedByteCount >= maxBytes;
  }

  /** True when an event of `bytes` fits without evicting anything. */
  hasRoom(bytes: number): boolean {
    return this.length + this.reservedCountValue + 1 <= this.maxCount && this.bytes + bytes <= this.maxBytes;
  }

  /** Removes every queued (not reserved) event and returns them, oldest first. */
  drainQueued(): EncodedEvent[] {
    const events: EncodedEvent[] = [];
    for (let event = this.shift(); event !== undefined; event = this.shift()) events.push(event);
    return events;
  }

  /** Removes every queued (not reserved) event and returns how many there were and their bytes. */
  clearQueued(): { count: number; bytes: number } {
    const cleared = { count: this.length, bytes: this.queuedByteCount };
    this.events.fill(undefined);
    this.head = 0;
    this.length = 0;
    this.queuedByteCount = 0;
    return cleared;
  }

  /** Removes and returns the oldest queued event. */
  shift(): EncodedEvent | undefined {
    if (this.length === 0) return undefined;
    const event = this.events[this.head];
    this.events[this.head] = undefined; // let the event be collected
    this.head = (this.head + 1) & (this.events.length - 1);
    this.length--;
    if (event !== undefined) this.queuedByteCount -= event.bytes;
    return event;
  }

  private pushBack(event: EncodedEvent, attempts: number, seq: number): void {
    if (this.length === this.events.length) this.grow();
    const index = (this.head + this.length) & (this.events.length - 1);
    this.events[index] = event;
    this.attempts[index] = attempts;
    this.seqs[index] = seq;
    this.length++;
    this.queuedByteCount += event.bytes;
  }

  private pushFront(event: EncodedEvent, attempts: number, seq: number): void {
    if (this.length === this.events.length) this.grow();
    this.head = (this.head - 1) & (this.events.length - 1);
    this.events[this.head] = event;
    this.attempts[this.head] = attempts;
    this.seqs[this.head] = seq;
    this.length++;
    this.queuedByteCount += event.bytes;
  }

  /** Doubles the ring (capacity stays a power of two so indices wrap with a mask), unrolling it in order. */
  private grow(): void {
    const capacity = this.events.length * 2;
    const events = new Array<EncodedEvent | undefined>(capacity);
    const attempts = new Array<number>(capacity).fill(0);
    const seqs = new Array<number>(capacity).fill(0);
    const mask = this.events.length - 1;
    for (let i = 0; i < this.length; i++) {
      const from = (this.head + i) & mask;
      events[i] = this.events[from];
      attempts[i] = this.attempts[from]!;
      seqs[i] = this.seqs[from]!;
    }
    this.events = events;
    this.attempts = attempts;
    this.seqs = seqs;
    this.head = 0;
  }
}
