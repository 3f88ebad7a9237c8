import * as fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import { type EncodedEvent, encodedEventFromJson } from "../sink";
import {
  encodeRecords,
  parseSegment,
  RECORD_HEADER_BYTES,
  recordSize,
  SEGMENT_HEADER,
} from "./segment-format";
import type { ResolvedSpillOptions } from "./spill-options";
import {
  acquireSlot,
  SEGMENT_SUFFIX,
  type SpillSlot,
  segmentFileName,
  sinkDirectoryName,
} from "./spill-slot";

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
  /**
   * Records already handed out. Kept when the segment is unloaded (older events were written in front of it
   * while it was partly handed out), so a reload skips them.
   */
  next: number;
  /** Read and fully handed out: waiting for `outstanding` to reach zero. */
  drained: boolean;
  /** Events handed out for replay and not yet settled. */
  outstanding: number;
}

const NOTHING: EncodedEvent[] = [];

/** Whole records written by one write, their bytes, and why the rest was not (when it was not). */
interface Written {
  records: number;
  bytes: number;
  failure?: unknown;
}

/** The whole records among the first `upTo` bytes of `data` (records as `encodeRecords` frames them). */
function countRecords(data: Buffer, upTo: number): { records: number; bytes: number } {
  let records = 0;
  let offset = 0;
  while (offset + RECORD_HEADER_BYTES <= upTo) {
    const end = offset + RECORD_HEADER_BYTES + data.readUInt32LE(offset + 4);
    if (end > upTo) break;
    records++;
    offset = end;
  }
  return { records, bytes: offset };
}

function newSegment(path: string): Segment {
  return {
    path,
    bytes: SEGMENT_HEADER.length,
    records: 0,
    writing: false,
    payloads: undefined,
    sizes: undefined,
    next: 0,
    drained: false,
    outstanding: 0,
  };
}

/**
 * Segment numbers of this store start here, not at 0, so a segment written in front of the backlog (events
 * older than what is on disk) can take a lower number and a later process, which reads a slot's segments in
 * name order, replays it first. Names stay 12 digits, so name order is number order.
 */
const FIRST_SEGMENT = 500_000_000_000;
/** Leftovers numbered below this (an earlier version counted from 0) are renamed above it at start-up. */
const RENUMBER_BELOW = 1_000_000_000;

function segmentNumberOf(path: string): number {
  const n = Number.parseInt(basename(path, SEGMENT_SUFFIX), 10);
  return Number.isFinite(n) ? n : -1;
}

function diskFullError(): Error {
  return Object.assign(new Error("the disk took no more bytes of a spill write (short write)"), {
    code: "ENOSPC",
  });
}

/**
 * One sink's segment files on disk: an in-memory hand-over (`push`, O(1), called from `enqueue`), one writer
 * that appends batches of records off the caller's path, and a reader that loads the oldest segment for
 * replay and deletes each segment once every event read from it was settled (delivered, dropped or spilled
 * again). All file I/O runs in one sequential loop, so a segment is never read while it is written.
 *
 * Replay is oldest first. New events are appended (`push`), but events that come back from memory (`takeBack`:
 * the queue when the circuit opens, batches in flight at shutdown, a failed replayed trial) may be older than
 * what is on disk: those are written to a segment in front of every other one (a lower number), so this
 * process and a later one replay them first.
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
  /** The lowest segment number in use or used: a front segment takes a lower one. */
  private lowestSegment: number;
  private active: Segment | undefined;
  private handle: FileHandle | undefined;

  private outbox: EncodedEvent[] = [];
  private outboxBytes = 0;
  /** Of the hand-over, events moved from the memory queue (forced): they do not use up the room for new ones. */
  private outboxForced = 0;
  private outboxForcedBytes = 0;
  /** Events to write in front of everything on disk, oldest first (forced, like `outboxForced`). */
  private front: EncodedEvent[] = [];
  private frontBytes = 0;
  /** The writer is writing front events: replay waits for them. */
  private writingFront = false;
  /**
   * The lowest emission number of the live events appended since the spill was last empty: a live event in
   * memory with a lower number is older than every live event on disk. Undefined when none was appended
   * (then what is on disk, leftovers and replayed events, is older than any live event in memory).
   */
  private liveFloor: number | undefined;
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
    const leftovers = this.renumberLeftovers(this.slot.leftovers);
    this.nextSegment =
      leftovers.length === 0
        ? FIRST_SEGMENT
        : Math.max(this.slot.nextSegment, ...leftovers.map((l) => segmentNumberOf(l.path) + 1));
    this.lowestSegment = leftovers.length === 0 ? FIRST_SEGMENT : segmentNumberOf(leftovers[0]!.path);
    for (const leftover of leftovers) {
      // Its record count is unknown (-1) until it is read.
      this.segments.push({ ...newSegment(leftover.path), bytes: leftover.bytes, records: -1 });
      this.diskBytes += leftover.bytes;
      this.unreadLeftovers++;
    }
    if (this.segments.length > 0) this.requestReplay();
  }

  /**
   * Leftovers numbered from 0 (an earlier version) leave no number below them for a front segment: they are
   * renamed, in replay order, above every leftover number and above {@link FIRST_SEGMENT}. Runs before this
   * store writes anything; a leftover that cannot be renamed keeps its name (this process replays it in
   * order anyway).
   */
  private renumberLeftovers(
    leftovers: readonly { readonly path: string; readonly bytes: number }[],
  ): { path: string; bytes: number }[] {
    const numbers = leftovers.map((l) => segmentNumberOf(l.path));
    if (leftovers.length === 0 || Math.min(...numbers) >= RENUMBER_BELOW) return [...leftovers];
    const base = Math.max(FIRST_SEGMENT, ...numbers.map((n) => n + 1));
    const renamed: { path: string; bytes: number }[] = [];
    leftovers.forEach((leftover, i) => {
      const target = join(this.directory, segmentFileName(base + i));
      try {
        fs.renameSync(leftover.path, target);
        renamed.push({ path: target, bytes: leftover.bytes });
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ENOENT") renamed.push({ ...leftover });
      }
    });
    return renamed;
  }

  /** Events handed to the spill and not yet handed back: in the hand-over, being written, or on disk. */
  get pending(): number {
    return this.outbox.length + this.front.length + this.writing + this.onDisk;
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
    const queued =
      this.outboxBytes +
      this.frontBytes +
      (this.outbox.length + this.front.length) * RECORD_HEADER_BYTES +
      this.writingBytes;
    return this.diskBytes + queued + bytes + count * RECORD_HEADER_BYTES <= this.options.maxBytes;
  }

  metrics(): SpillMetrics {
    return {
      directory: this.directory,
      pending: this.pending,
      buffered: this.outbox.length + this.front.length + this.writing,
      bytes: this.diskBytes,
      segments: this.segments.length,
      corrupted: this.corruptedCount,
    };
  }

  /**
   * Hands a new event over for writing after everything on disk. O(1); the write happens later, in a batch,
   * off the caller's path.
   * @param seq the event's emission number (the pipeline's sequence, increasing with every accepted event).
   * @returns false when the hand-over is full (the disk cannot keep up) or the store is closed.
   */
  push(event: EncodedEvent, seq: number): boolean {
    if (this.closing) return false;
    if (
      this.outbox.length - this.outboxForced >= this.limits.maxCount ||
      this.outboxBytes - this.outboxForcedBytes + event.bytes > this.limits.maxBytes
    ) {
      return false;
    }
    if (this.pending === 0) this.liveFloor = undefined;
    this.noteLive(seq);
    this.outbox.push(event);
    this.outboxBytes += event.bytes;
    this.kick();
    return true;
  }

  /**
   * Takes events back from memory (they leave the queue, or a send that will not complete), skipping the
   * hand-over's limits: memory stays bounded by the queue's limits plus the hand-over's. Events older than
   * what is on disk are written in front of it, the others after it, each group in the order given, so
   * replay stays oldest first. Older: an event replayed from disk (everything left there was behind it), or a
   * live event numbered below every live event on disk. Events replayed from disk are settled here.
   * @param events oldest first as far as they are ordered: batches in flight in send order, then the queue.
   * @param seqs the events' emission numbers (parallel to `events`).
   * @returns how many were refused because the store is closed (the caller drops them).
   */
  takeBack(events: readonly EncodedEvent[], seqs: readonly number[]): number {
    if (events.length === 0) return 0;
    if (this.closing) {
      this.settle(events);
      return events.length;
    }
    if (this.pending === 0) this.liveFloor = undefined;
    const floor = this.liveFloor;
    const front: EncodedEvent[] = [];
    let frontBytes = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const seq = seqs[i]!;
      if (this.origin.has(event) || (floor !== undefined && seq < floor)) {
        front.push(event);
        frontBytes += event.bytes;
      } else {
        this.noteLive(seq);
        this.outbox.push(event);
        this.outboxBytes += event.bytes;
        this.outboxForced++;
        this.outboxForcedBytes += event.bytes;
      }
    }
    this.settle(events);
    if (front.length > 0) {
      // Taken back later, so older than the front events still waiting: they go first.
      this.front = this.front.length === 0 ? front : front.concat(this.front);
      this.frontBytes += frontBytes;
    }
    this.kick();
    return 0;
  }

  /** A live event goes on disk after everything there. */
  private noteLive(seq: number): void {
    if (this.liveFloor === undefined || seq < this.liveFloor) this.liveFloor = seq;
  }

  /**
   * Up to `max` events of the oldest segment, rebuilt from their JSON (event ids unchanged). Empty when none
   * are loaded yet: a load starts and `onReadable` fires when it is done.
   */
  takeReplay(max: number): EncodedEvent[] {
    if (max <= 0) return NOTHING;
    // Events waiting to be written in front come first: nothing is handed out until they are on disk.
    const segment =
      this.front.length > 0 || this.writingFront ? undefined : this.segments.find((s) => !s.drained);
    if (segment?.payloads === undefined) {
      this.requestReplay();
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

  /** Loads the oldest segment unless it is loaded (no-op when a load is under way or nothing is on disk). */
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
        if (this.front.length > 0) {
          await this.writeFront();
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
      if (this.outbox.length > 0 || this.front.length > 0 || this.deleting.length > 0) this.kick();
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
      let failure: unknown;
      let written: Written = { records: 0, bytes: 0 };
      try {
        if (this.active === undefined) await this.openSegment();
        written = await this.writeRecords(this.handle!, this.active!, encodeRecords(jsons, sizes));
      } catch (error) {
        failure = error;
      }
      const segment = this.active;
      if (segment !== undefined) {
        segment.bytes += written.bytes;
        segment.records += written.records;
        this.diskBytes += written.bytes;
      }
      this.countWritten(written.records, jsons.length, recordBytes, written.failure ?? failure);
      if (written.failure !== undefined || failure !== undefined) {
        // Start afresh: the file may end in a partial record, which the reader skips as a torn tail.
        await this.seal().catch(() => undefined);
      }
    }
  }

  /**
   * Writes `data` (whole records) at the end of `segment`'s file. A short write (the kernel's answer to a full
   * disk) is continued; when the disk takes no more, the file is cut back to the last whole record, so only
   * whole records count as written (the rest is reported in `failure`). Syncs when `fsync` is `batch`.
   * @returns the whole records written and their bytes; `failure` when not all of them were.
   */
  private async writeRecords(handle: FileHandle, segment: Segment, data: Buffer): Promise<Written> {
    let done = 0;
    let failure: unknown;
    try {
      while (done < data.length) {
        const { bytesWritten } = await handle.write(data, done, data.length - done);
        if (!(bytesWritten > 0)) throw diskFullError();
        done += bytesWritten;
      }
    } catch (error) {
      failure = error;
    }
    if (failure === undefined) {
      if (this.options.fsync === "batch") await handle.datasync();
      return { records: countRecords(data, data.length).records, bytes: data.length };
    }
    const whole = countRecords(data, done);
    if (whole.bytes < done) {
      try {
        await handle.truncate(segment.bytes + whole.bytes);
      } catch {
        // The torn record stays: the reader skips it (and counts it as corrupted). Its bytes are on disk.
        return { records: whole.records, bytes: done, failure };
      }
    }
    return { ...whole, failure };
  }

  /** Books a write of `total` events of which `records` reached the disk; `failure` dropped the others. */
  private countWritten(records: number, total: number, recordBytes: number, failure: unknown): void {
    this.writing -= total;
    this.writingBytes -= recordBytes;
    this.onDisk += records;
    this.spilledCount += records;
    if (records < total) {
      const code = (failure as { code?: unknown } | null)?.code;
      this.hooks.onDrop(
        code === "ENOSPC" || code === "EDQUOT" ? "spill-full" : "spill-failed",
        total - records,
      );
    }
    if (failure !== undefined) this.hooks.onError(failure);
  }

  /**
   * Writes the events taken back in front of the backlog into new segments numbered below every segment in
   * use, inserted at the head of the replay order. A segment loaded for replay and partly handed out is
   * unloaded by the next load (see `loadOldest`), so its remaining records come after these.
   */
  private async writeFront(): Promise<void> {
    this.writingFront = true;
    try {
      await this.writeFrontSegments();
    } finally {
      this.writingFront = false;
    }
    this.requestReplay();
  }

  private async writeFrontSegments(): Promise<void> {
    const events = this.front;
    this.front = [];
    this.frontBytes = 0;
    this.writing += events.length;
    let recordBytesTotal = 0;
    for (const event of events) recordBytesTotal += recordSize(event.bytes);
    this.writingBytes += recordBytesTotal;
    const { maxBytes, segmentBytes } = this.options;
    // Split into segments of at most `segmentBytes`, within the budget; numbered from the oldest up.
    const runs: { jsons: string[]; sizes: number[]; recordBytes: number }[] = [];
    let run = { jsons: [] as string[], sizes: [] as number[], recordBytes: 0 };
    let planned = 0;
    let full = 0;
    let fullBytes = 0;
    for (const event of events) {
      const size = recordSize(event.bytes);
      const startsRun =
        run.jsons.length === 0 || SEGMENT_HEADER.length + run.recordBytes + size > segmentBytes;
      const cost = size + (startsRun ? SEGMENT_HEADER.length : 0);
      if (this.diskBytes + planned + cost > maxBytes) {
        full++;
        fullBytes += size;
        continue;
      }
      if (startsRun && run.jsons.length > 0) {
        runs.push(run);
        run = { jsons: [], sizes: [], recordBytes: 0 };
      }
      run.jsons.push(event.json);
      run.sizes.push(event.bytes);
      run.recordBytes += size;
      planned += cost;
    }
    if (run.jsons.length > 0) runs.push(run);
    if (full > 0) {
      this.writing -= full;
      this.writingBytes -= fullBytes;
      this.hooks.onDrop("spill-full", full);
    }
    if (runs.length === 0) return;
    const first = this.lowestSegment - runs.length;
    this.lowestSegment = first;
    const mtime = await this.frontMtime();
    const written: Segment[] = [];
    for (let r = 0; r < runs.length; r++) {
      const { jsons, sizes, recordBytes } = runs[r]!;
      const path = join(this.directory, segmentFileName(first + r));
      let handle: FileHandle | undefined;
      let segment: Segment | undefined;
      let result: Written = { records: 0, bytes: 0 };
      let failure: unknown;
      try {
        handle = await this.createSegmentFile(path);
        segment = newSegment(path);
        this.diskBytes += segment.bytes;
        result = await this.writeRecords(handle, segment, encodeRecords(jsons, sizes));
        segment.bytes += result.bytes;
        segment.records += result.records;
        this.diskBytes += result.bytes;
        if (this.options.fsync === "segment" && result.failure === undefined) await handle.datasync();
        if (mtime !== undefined) await handle.utimes(mtime, mtime).catch(() => undefined);
      } catch (error) {
        failure = error;
      }
      await handle?.close().catch(() => undefined);
      this.countWritten(result.records, jsons.length, recordBytes, result.failure ?? failure);
      if (segment !== undefined) {
        segment.writing = false;
        written.push(segment);
      }
    }
    this.segments.unshift(...written);
  }

  private async openSegment(): Promise<void> {
    const path = join(this.directory, segmentFileName(this.nextSegment++));
    const handle = await this.createSegmentFile(path);
    const segment = newSegment(path);
    segment.writing = true;
    this.diskBytes += segment.bytes;
    this.segments.push(segment);
    this.active = segment;
    this.handle = handle;
  }

  /**
   * A modification time for front segments just before the oldest segment's: a later process that adopts
   * this slot as an orphan orders its segments by modification time. Undefined when there is none to precede.
   */
  private async frontMtime(): Promise<Date | undefined> {
    const oldest = this.segments[0];
    if (oldest === undefined) return undefined;
    try {
      const { mtimeMs } = await fs.promises.stat(oldest.path);
      return new Date(mtimeMs - 1);
    } catch {
      return undefined;
    }
  }

  /** Creates a segment file holding just the header (removed again when the header cannot be written). */
  private async createSegmentFile(path: string): Promise<FileHandle> {
    const handle = await fs.promises.open(path, "wx");
    try {
      const { bytesWritten } = await handle.write(SEGMENT_HEADER);
      if (bytesWritten !== SEGMENT_HEADER.length) throw diskFullError();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.promises.rm(path, { force: true });
      throw error;
    }
    return handle;
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

  /**
   * Reads the oldest segment not fully handed out; true when it made events available. A segment loaded
   * earlier that is not the oldest any more (events were written in front of it while it was partly handed
   * out) is unloaded: its remaining records must come after the front segments', and holding it meanwhile
   * would keep a second segment in memory. Its `next` stays, so reading it again skips what was handed out.
   */
  private async loadOldest(): Promise<boolean> {
    const segment = this.segments.find((s) => !s.drained);
    if (segment === undefined) return false;
    if (segment.payloads !== undefined) return true;
    for (const other of this.segments) {
      if (other.payloads === undefined || other.drained) continue;
      other.payloads = undefined;
      other.sizes = undefined;
    }
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
    } else {
      // On disk by the books (this process wrote them, or read them before), and what the file holds now.
      const counted = segment.records - segment.next;
      const found = Math.max(0, intact - segment.next);
      if (counted > found) {
        this.onDisk -= counted - found;
        this.hooks.onDrop("spill-failed", counted - found);
      } else if (found > counted) {
        this.recoveredCount += found - counted;
        this.onDisk += found - counted;
      }
    }
    segment.records = intact;
    if (segment.next >= intact) {
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
