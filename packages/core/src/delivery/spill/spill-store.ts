import * as fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { type EncodedEvent, encodedEventFromJson } from "../sink";
import {
  encodeRecords,
  parseSegment,
  RECORD_HEADER_BYTES,
  recordSize,
  SEGMENT_HEADER,
} from "./segment-format";
import type { ResolvedSpillOptions } from "./spill-options";
import { acquireSlot, type SpillSlot, segmentFileName, sinkDirectoryName } from "./spill-slot";

/** Why the spill let go of events it was handed. */
export type SpillDropReason = "spill-full" | "spill-failed";

/** How the store reports back to its pipeline. Called synchronously from the store's I/O continuations. */
export interface SpillStoreHooks {
  /** Events that will never be written or replayed. */
  onDrop(reason: SpillDropReason, count: number): void;
  /** Events can be taken with `takeReplay()` now. */
  onReadable(): void;
  /** A write or read failed (the affected events were dropped and reported through `onDrop`). */
  onError(error: unknown): void;
  /**
   * The I/O loop went idle with no backlog: nothing on disk, on its way there or being deleted. A `flush()`
   * waiting for the spill may be done (the last leftovers may have held no intact event).
   */
  onEmpty(): void;
}

/** Limits of the in-memory hand-over between `push()` and the writer. */
export interface SpillBufferLimits {
  readonly maxCount: number;
  readonly maxBytes: number;
}

/** A snapshot of one sink's spill. */
export interface SpillMetrics {
  /** The slot directory this process writes and replays. */
  readonly directory: string;
  /** Events on disk or on their way there, not yet handed back to the queue. Part of `pending`. */
  readonly pending: number;
  /** Of `pending`, the events handed over and not written yet (the rest is in segment files). */
  readonly buffered: number;
  /** Bytes of segment files on disk (never more than `maxBytes`, except leftovers of a larger budget). */
  readonly bytes: number;
  /**
   * Segment files the spill holds. Files are created and deleted off the event loop, so while the writer is
   * busy the directory may briefly hold one more or one fewer.
   */
  readonly segments: number;
  /** Damaged places in segments found while replaying (bad checksum, impossible length, torn tail). */
  readonly corrupted: number;
}

interface Segment {
  readonly path: string;
  /** Size of the file. */
  bytes: number;
  /** Records in the file: those this process wrote, or (after loading) the intact ones; -1 before a leftover is read. */
  records: number;
  /** The file still receives writes. */
  writing: boolean;
  /** Intact payloads once loaded, consumed front to back by `takeReplay`. */
  payloads: string[] | undefined;
  sizes: number[] | undefined;
  next: number;
  /** Read and fully handed out: waiting for `outstanding` to reach zero. */
  drained: boolean;
  /** Events handed out for replay and not yet settled. */
  outstanding: number;
}

const NOTHING: EncodedEvent[] = [];

/**
 * One sink's segment files on disk: an in-memory hand-over (`push`, O(1), called from `enqueue`), one writer
 * that appends batches of records off the caller's path, and a reader that loads the oldest segment for
 * replay and deletes each segment once every event read from it was settled (delivered, dropped or spilled
 * again). All file I/O runs in one sequential loop, so a segment is never read while it is written.
 */
export class SpillStore {
  readonly options: ResolvedSpillOptions;
  readonly directory: string;

  private readonly slot: SpillSlot;
  private readonly hooks: SpillStoreHooks;
  private readonly limits: SpillBufferLimits;
  private readonly segments: Segment[] = [];
  private readonly origin = new WeakMap<EncodedEvent, Segment>();
  private nextSegment: number;
  private active: Segment | undefined;
  private handle: FileHandle | undefined;

  private outbox: EncodedEvent[] = [];
  private outboxBytes = 0;
  /** Of the hand-over, events moved from the memory queue (forced): they do not use up the room for new ones. */
  private outboxForced = 0;
  private outboxForcedBytes = 0;
  private writing = 0;
  /** Bytes on disk the events being written will take (records, without segment headers). */
  private writingBytes = 0;
  private onDisk = 0;
  private diskBytes = 0;
  private outstandingTotal = 0;
  /** Leftover segments not read yet (their event count is unknown until then). */
  private unreadLeftovers = 0;
  /**
   * Segments read and settled, to be deleted by the I/O loop. Their bytes count against `maxBytes` until the
   * file is gone, so the writer never fills the budget again while an old file is still there.
   */
  private deleting: Segment[] = [];

  private spilledCount = 0;
  private replayedCount = 0;
  private recoveredCount = 0;
  private corruptedCount = 0;

  private ioRunning = false;
  private ioScheduled = false;
  private wantReplay = false;
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  /**
   * Opens (creating it when missing) this sink's spill directory and takes a slot in it.
   * @param sinkName names the sink's subdirectory unless `options.name` does.
   * @throws ConfigurationError when the directory cannot be created or written.
   */
  constructor(
    options: ResolvedSpillOptions,
    sinkName: string,
    limits: SpillBufferLimits,
    hooks: SpillStoreHooks,
    optionPath = "delivery.spill.directory",
  ) {
    this.options = options;
    this.hooks = hooks;
    this.limits = limits;
    const sinkDirectory = join(options.directory, options.name ?? sinkDirectoryName(sinkName));
    this.slot = acquireSlot(sinkDirectory, optionPath);
    this.directory = this.slot.directory;
    this.nextSegment = this.slot.nextSegment;
    for (const leftover of this.slot.leftovers) {
      this.segments.push({
        path: leftover.path,
        bytes: leftover.bytes,
        records: -1,
        writing: false,
        payloads: undefined,
        sizes: undefined,
        next: 0,
        drained: false,
        outstanding: 0,
      });
      this.diskBytes += leftover.bytes;
      this.unreadLeftovers++;
    }
    if (this.segments.length > 0) this.requestReplay();
  }

  /** Events handed to the spill and not yet handed back: in the hand-over, being written, or on disk. */
  get pending(): number {
    return this.outbox.length + this.writing + this.onDisk;
  }

  /** Events written to disk so far. */
  get spilled(): number {
    return this.spilledCount;
  }

  /** Events read back from disk and handed to the queue so far. */
  get replayed(): number {
    return this.replayedCount;
  }

  /** Intact events found in segments an earlier process (or pipeline) left. */
  get recovered(): number {
    return this.recoveredCount;
  }

  /** Events handed out by `takeReplay` and not yet passed to `settle`. */
  get outstanding(): number {
    return this.outstandingTotal;
  }

  /**
   * True while anything is on disk or on its way there, including leftovers not read yet and segment files
   * not deleted yet.
   */
  get hasBacklog(): boolean {
    return this.pending > 0 || this.unreadLeftovers > 0 || this.deleting.length > 0;
  }

  /**
   * True when `count` events of `bytes` fit the disk budget beside what is on disk and what waits to be
   * written (new segments' headers aside: the writer has the last word).
   */
  hasRoomFor(count: number, bytes: number): boolean {
    const queued = this.outboxBytes + this.outbox.length * RECORD_HEADER_BYTES + this.writingBytes;
    return this.diskBytes + queued + bytes + count * RECORD_HEADER_BYTES <= this.options.maxBytes;
  }

  metrics(): SpillMetrics {
    return {
      directory: this.directory,
      pending: this.pending,
      buffered: this.outbox.length + this.writing,
      bytes: this.diskBytes,
      segments: this.segments.length,
      corrupted: this.corruptedCount,
    };
  }

  /**
   * Hands an event over for writing. O(1); the write happens later, in a batch, off the caller's path.
   * @param force skip the hand-over's limits: the event comes from the memory queue (which it leaves), so
   *   memory stays bounded by the queue's limits plus the hand-over's.
   * @returns false when the hand-over is full (the disk cannot keep up) or the store is closed.
   */
  push(event: EncodedEvent, force = false): boolean {
    if (this.closing) return false;
    if (force) {
      this.outboxForced++;
      this.outboxForcedBytes += event.bytes;
    } else if (
      this.outbox.length - this.outboxForced >= this.limits.maxCount ||
      this.outboxBytes - this.outboxForcedBytes + event.bytes > this.limits.maxBytes
    ) {
      return false;
    }
    this.outbox.push(event);
    this.outboxBytes += event.bytes;
    this.kick();
    return true;
  }

  /**
   * Up to `max` events of the oldest segment, rebuilt from their JSON (event ids unchanged). Empty when none
   * are loaded yet: a load starts and `onReadable` fires when it is done.
   */
  takeReplay(max: number): EncodedEvent[] {
    const segment = this.segments.find((s) => s.payloads !== undefined && !s.drained);
    if (segment === undefined || max <= 0) {
      if (max > 0) this.requestReplay();
      return NOTHING;
    }
    const payloads = segment.payloads!;
    const sizes = segment.sizes!;
    const end = Math.min(payloads.length, segment.next + max);
    const events: EncodedEvent[] = [];
    let unreadable = 0;
    for (let i = segment.next; i < end; i++) {
      const json = payloads[i]!;
      payloads[i] = ""; // the queue holds it now
      let event: EncodedEvent;
      try {
        event = encodedEventFromJson(json, sizes[i]);
      } catch {
        unreadable++;
        continue;
      }
      this.origin.set(event, segment);
      events.push(event);
    }
    const taken = end - segment.next;
    segment.next = end;
    segment.outstanding += events.length;
    this.outstandingTotal += events.length;
    this.onDisk -= taken;
    this.replayedCount += events.length;
    if (unreadable > 0) {
      this.corruptedCount += unreadable;
      this.hooks.onDrop("spill-failed", unreadable);
    }
    if (segment.next >= payloads.length) {
      segment.drained = true;
      segment.payloads = undefined;
      segment.sizes = undefined;
      this.maybeDelete(segment);
      this.requestReplay();
    }
    return events;
  }

  /** Events handed out by `takeReplay` left memory (delivered, dropped or spilled again): their segments may go. */
  settle(events: readonly EncodedEvent[]): void {
    if (this.outstandingTotal === 0) return;
    for (const event of events) {
      const segment = this.origin.get(event);
      if (segment === undefined) continue;
      this.origin.delete(event);
      segment.outstanding--;
      this.outstandingTotal--;
      this.maybeDelete(segment);
    }
  }

  /** Loads the oldest segment when nothing is loaded (no-op when a load is under way or nothing is on disk). */
  requestReplay(): void {
    if (this.closing) return;
    this.wantReplay = true;
    this.kick();
  }

  /**
   * Writes what was handed over, closes (and, unless `fsync` is `never`, syncs) the open segment and
   * releases this process's slot. Segments stay on disk for the next process. Never rejects.
   */
  async close(): Promise<void> {
    this.wantReplay = false;
    if (!this.closing) {
      this.closing = true;
      this.kick();
    }
    await this.idle();
    try {
      await this.seal();
    } catch (error) {
      this.hooks.onError(error);
    }
    this.slot.release();
  }

  /** Resolves when the I/O loop has nothing left to do. */
  idle(): Promise<void> {
    if (!this.ioRunning && !this.ioScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    if (this.ioScheduled || this.ioRunning) return;
    this.ioScheduled = true;
    setImmediate(this.runIo);
  }

  private readonly runIo = async (): Promise<void> => {
    this.ioScheduled = false;
    this.ioRunning = true;
    try {
      for (;;) {
        // Deletions first: the budget they free is only there once the files are gone.
        if (this.deleting.length > 0) {
          await this.deleteSegments();
          continue;
        }
        if (this.outbox.length > 0) {
          await this.writeOutbox();
          continue;
        }
        if (this.wantReplay && !this.closing) {
          this.wantReplay = false;
          if (await this.loadOldest()) this.hooks.onReadable();
          continue;
        }
        break;
      }
    } catch (error) {
      this.hooks.onError(error);
    } finally {
      this.ioRunning = false;
      if (this.outbox.length > 0 || this.deleting.length > 0) this.kick();
      else {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
        if (!this.hasBacklog) this.hooks.onEmpty();
      }
    }
  };

  private async writeOutbox(): Promise<void> {
    const events = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    this.outboxForced = 0;
    this.outboxForcedBytes = 0;
    this.writing += events.length;
    for (const event of events) this.writingBytes += recordSize(event.bytes);
    const { maxBytes, segmentBytes } = this.options;
    let i = 0;
    while (i < events.length) {
      const first = recordSize(events[i]!.bytes);
      if (this.active !== undefined && this.active.records > 0 && this.active.bytes + first > segmentBytes) {
        await this.seal();
      }
      const header = this.active === undefined ? SEGMENT_HEADER.length : 0;
      const jsons: string[] = [];
      const sizes: number[] = [];
      let runBytes = header;
      let full = 0;
      let fullBytes = 0;
      const segmentStart = this.active?.bytes ?? 0;
      while (i < events.length) {
        const event = events[i]!;
        const size = recordSize(event.bytes);
        if (this.diskBytes + runBytes + size > maxBytes) {
          full++;
          fullBytes += size;
          i++;
          continue;
        }
        if (jsons.length > 0 && segmentStart + runBytes + size > segmentBytes) break;
        jsons.push(event.json);
        sizes.push(event.bytes);
        runBytes += size;
        i++;
      }
      if (full > 0) {
        this.writing -= full;
        this.writingBytes -= fullBytes;
        this.hooks.onDrop("spill-full", full);
      }
      if (jsons.length === 0) continue;
      const recordBytes = runBytes - header;
      try {
        if (this.active === undefined) await this.openSegment();
        const data = encodeRecords(jsons, sizes);
        await this.handle!.write(data);
        if (this.options.fsync === "batch") await this.handle!.datasync();
        this.active!.bytes += data.length;
        this.active!.records += jsons.length;
        this.diskBytes += data.length;
        this.writing -= jsons.length;
        this.writingBytes -= recordBytes;
        this.onDisk += jsons.length;
        this.spilledCount += jsons.length;
      } catch (error) {
        this.writing -= jsons.length;
        this.writingBytes -= recordBytes;
        const code = (error as { code?: unknown } | null)?.code;
        this.hooks.onDrop(
          code === "ENOSPC" || code === "EDQUOT" ? "spill-full" : "spill-failed",
          jsons.length,
        );
        this.hooks.onError(error);
        // Start afresh: the file may end in a partial record, which the reader skips as a torn tail.
        await this.seal().catch(() => undefined);
      }
    }
  }

  private async openSegment(): Promise<void> {
    const path = join(this.directory, segmentFileName(this.nextSegment++));
    const handle = await fs.promises.open(path, "wx");
    try {
      await handle.write(SEGMENT_HEADER);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.promises.rm(path, { force: true });
      throw error;
    }
    const segment: Segment = {
      path,
      bytes: SEGMENT_HEADER.length,
      records: 0,
      writing: true,
      payloads: undefined,
      sizes: undefined,
      next: 0,
      drained: false,
      outstanding: 0,
    };
    this.diskBytes += segment.bytes;
    this.segments.push(segment);
    this.active = segment;
    this.handle = handle;
  }

  /** Closes the segment being written, so it can be read. */
  private async seal(): Promise<void> {
    const segment = this.active;
    const handle = this.handle;
    if (segment === undefined || handle === undefined) return;
    this.active = undefined;
    this.handle = undefined;
    segment.writing = false;
    try {
      if (this.options.fsync !== "never") await handle.datasync();
    } finally {
      await handle.close();
    }
    this.maybeDelete(segment);
  }

  /** Reads the oldest unread segment; true when it made events available. */
  private async loadOldest(): Promise<boolean> {
    if (this.segments.some((s) => s.payloads !== undefined && !s.drained)) return true;
    const segment = this.segments.find((s) => !s.drained && s.payloads === undefined);
    if (segment === undefined) return false;
    if (segment.writing) {
      if (segment.records === 0) return false;
      await this.seal();
    }
    let data: Buffer;
    try {
      data = await fs.promises.readFile(segment.path);
    } catch (error) {
      this.hooks.onError(error);
      data = Buffer.alloc(0);
      this.corruptedCount++;
    }
    const parsed = parseSegment(data);
    const intact = parsed.payloads.length;
    this.corruptedCount += parsed.corrupted;
    if (segment.records < 0) {
      this.unreadLeftovers--;
      this.recoveredCount += intact;
      this.onDisk += intact;
    } else if (segment.records > intact) {
      const lost = segment.records - intact;
      this.onDisk -= lost;
      this.hooks.onDrop("spill-failed", lost);
    } else if (intact > segment.records) {
      this.recoveredCount += intact - segment.records;
      this.onDisk += intact - segment.records;
    }
    segment.records = intact;
    segment.next = 0;
    if (intact === 0) {
      segment.drained = true;
      this.maybeDelete(segment);
      return this.loadOldest();
    }
    segment.payloads = parsed.payloads;
    segment.sizes = parsed.sizes;
    return true;
  }

  /** Hands a segment whose every event was read and settled to the I/O loop for deletion. */
  private maybeDelete(segment: Segment): void {
    if (!segment.drained || segment.outstanding > 0 || segment.writing) return;
    const index = this.segments.indexOf(segment);
    if (index < 0) return;
    this.segments.splice(index, 1);
    this.deleting.push(segment);
    this.kick();
  }

  /** Deletes the segments handed over by `maybeDelete`; their bytes leave the budget once each file is gone. */
  private async deleteSegments(): Promise<void> {
    while (this.deleting.length > 0) {
      const segment = this.deleting[0]!;
      try {
        await fs.promises.rm(segment.path, { force: true });
      } catch (error) {
        this.hooks.onError(error);
      }
      this.deleting.shift();
      this.diskBytes -= segment.bytes;
    }
  }
}
