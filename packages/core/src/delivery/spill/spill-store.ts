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
  /** The file's number: replay order is number order. */
  readonly number: number;
  /**
   * The lowest and highest emission number of the live events in the file (in memory only). Undefined for
   * leftovers of an earlier process (older than every event of this one) and segments of events replayed from
   * them. A segment of events replayed from a segment takes that segment's range.
   */
  minSeq: number | undefined;
  maxSeq: number | undefined;
  /** Taken-back events wait to be written in front of this segment: it stays until they are. */
  pins: number;
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

/** Events taken back from memory that go on disk in front of `anchor` (and after the segment before it). */
interface Insert {
  readonly anchor: Segment;
  /** Live events with their emission numbers; written in that order. */
  readonly live: { event: EncodedEvent; seq: number }[];
  /** Events replayed from `anchor` with their record index in it; written after the live ones, in that order. */
  readonly replayed: { event: EncodedEvent; index: number }[];
}

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
    number: segmentNumberOf(path),
    minSeq: undefined,
    maxSeq: undefined,
    pins: 0,
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
/**
 * Appended segments are numbered this far apart, so a segment of events taken back from memory can be written
 * between two of them (a number strictly between theirs) and a later process replays it in that place.
 */
const SEGMENT_STEP = 1_000_000;
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
 * Replay is oldest first, in emission order. New events are appended (`push`); a segment holds consecutive
 * emission numbers only (a gap, events that went to memory meanwhile, starts a new segment). Events that come
 * back from memory (`takeBack`: the queue when the circuit opens, batches in flight at shutdown, a failed
 * replayed trial) go in their place among what is on disk: in a new segment numbered between its neighbours,
 * so this process and a later one replay them there.
 */
export class SpillStore {
  readonly options: ResolvedSpillOptions;
  readonly directory: string;

  private readonly slot: SpillSlot;
  private readonly hooks: SpillStoreHooks;
  private readonly limits: SpillBufferLimits;
  private readonly segments: Segment[] = [];
  /** Events handed out by `takeReplay`: the segment and record index they came from. */
  private readonly origin = new WeakMap<EncodedEvent, { segment: Segment; index: number }>();
  private nextSegment: number;
  private active: Segment | undefined;
  private handle: FileHandle | undefined;

  private outbox: EncodedEvent[] = [];
  /** The outbox's emission numbers (parallel to `outbox`, increasing). */
  private outboxSeqs: number[] = [];
  private outboxBytes = 0;
  /** Of the hand-over, events moved from the memory queue (forced): they do not use up the room for new ones. */
  private outboxForced = 0;
  private outboxForcedBytes = 0;
  /** The forced events of the hand-over. */
  private readonly forced = new Set<EncodedEvent>();
  /** Events taken back to be written between segments, by the segment they go in front of (forced). */
  private inserts = new Map<Segment, Insert>();
  private insertCount = 0;
  private insertBytes = 0;
  /** The writer is writing inserted events: replay waits for them. */
  private writingInserts = false;
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
        : Math.max(this.slot.nextSegment, ...leftovers.map((l) => segmentNumberOf(l.path) + SEGMENT_STEP));
    for (const leftover of leftovers) {
      // Its record count is unknown (-1) until it is read.
      this.segments.push({ ...newSegment(leftover.path), bytes: leftover.bytes, records: -1 });
      this.diskBytes += leftover.bytes;
      this.unreadLeftovers++;
    }
    if (this.segments.length > 0) this.requestReplay();
  }

  /**
   * Leftovers numbered from 0 (an earlier version) leave no number below them for an inserted segment: they are
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
    return this.outbox.length + this.insertCount + this.writing + this.onDisk;
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
      this.insertBytes +
      (this.outbox.length + this.insertCount) * RECORD_HEADER_BYTES +
      this.writingBytes;
    return this.diskBytes + queued + bytes + count * RECORD_HEADER_BYTES <= this.options.maxBytes;
  }

  metrics(): SpillMetrics {
    return {
      directory: this.directory,
      pending: this.pending,
      buffered: this.outbox.length + this.insertCount + this.writing,
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
    this.outbox.push(event);
    this.outboxSeqs.push(seq);
    this.outboxBytes += event.bytes;
    this.kick();
    return true;
  }

  /**
   * Takes events back from memory (they leave the queue, or a send that will not complete), skipping the
   * hand-over's limits: memory stays bounded by the queue's limits plus the hand-over's. Each event goes in
   * its place among what is on disk, so replay stays in emission order: a live event in front of the first
   * segment holding later live events (or among the events waiting to be appended), an event replayed from
   * disk in front of the rest of its segment. Leftovers of an earlier process count as older than every event
   * of this one. Events replayed from disk are settled here.
   * @param events oldest first as far as they are ordered: batches in flight in send order, then the queue.
   * @param seqs the events' emission numbers (parallel to `events`; ignored for events replayed from disk).
   * @returns how many were refused because the store is closed (the caller drops them).
   */
  takeBack(events: readonly EncodedEvent[], seqs: readonly number[]): number {
    if (events.length === 0) return 0;
    if (this.closing) {
      this.settle(events);
      return events.length;
    }
    const back: { event: EncodedEvent; seq: number }[] = [];
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const from = this.origin.get(event);
      const anchor = from?.segment ?? this.segmentAfter(seqs[i]!);
      if (anchor === undefined) {
        back.push({ event, seq: seqs[i]! });
        continue;
      }
      let insert = this.inserts.get(anchor);
      if (insert === undefined) {
        insert = { anchor, live: [], replayed: [] };
        this.inserts.set(anchor, insert);
        anchor.pins++;
      }
      if (from !== undefined) insert.replayed.push({ event, index: from.index });
      else insert.live.push({ event, seq: seqs[i]! });
      this.insertCount++;
      this.insertBytes += event.bytes;
    }
    if (back.length > 0) this.mergeIntoOutbox(back);
    this.settle(events);
    this.kick();
    return 0;
  }

  /**
   * The first segment holding live events emitted after `seq` (leftovers and their replayed events hold none):
   * a live event numbered `seq` goes in front of it. Undefined when there is none (it goes after everything).
   * Segments are in emission order, the unnumbered ones first, so this is a binary search.
   */
  private segmentAfter(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const min = this.segments[mid]!.minSeq;
      if (min === undefined || min <= seq) lo = mid + 1;
      else hi = mid;
    }
    return this.segments[lo];
  }

  /** Adds live events taken back to the hand-over, in emission order among the events waiting there (forced). */
  private mergeIntoOutbox(back: { event: EncodedEvent; seq: number }[]): void {
    back.sort((a, b) => a.seq - b.seq);
    for (const { event } of back) {
      this.outboxBytes += event.bytes;
      this.outboxForced++;
      this.outboxForcedBytes += event.bytes;
      this.forced.add(event);
    }
    const seqs = this.outboxSeqs;
    if (seqs.length === 0 || seqs[seqs.length - 1]! < back[0]!.seq) {
      for (const { event, seq } of back) {
        this.outbox.push(event);
        seqs.push(seq);
      }
      return;
    }
    const events: EncodedEvent[] = [];
    const merged: number[] = [];
    let i = 0;
    let j = 0;
    while (i < seqs.length || j < back.length) {
      if (j >= back.length || (i < seqs.length && seqs[i]! < back[j]!.seq)) {
        events.push(this.outbox[i]!);
        merged.push(seqs[i++]!);
      } else {
        events.push(back[j]!.event);
        merged.push(back[j++]!.seq);
      }
    }
    this.outbox = events;
    this.outboxSeqs = merged;
  }

  /**
   * Up to `max` events of the oldest segment, rebuilt from their JSON (event ids unchanged). Empty when none
   * are loaded yet: a load starts and `onReadable` fires when it is done.
   */
  takeReplay(max: number): EncodedEvent[] {
    if (max <= 0) return NOTHING;
    // Events waiting to be written between segments may come first: nothing is handed out until they are on disk.
    const segment =
      this.insertCount > 0 || this.writingInserts ? undefined : this.segments.find((s) => !s.drained);
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
      this.origin.set(event, { segment, index: i });
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
      const segment = this.origin.get(event)?.segment;
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
        if (this.insertCount > 0) {
          await this.writeInserts();
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
      if (this.outbox.length > 0 || this.insertCount > 0 || this.deleting.length > 0) this.kick();
      else {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
        if (!this.hasBacklog) this.hooks.onEmpty();
      }
    }
  };

  /**
   * Writes one run of the hand-over to the open segment: events with consecutive emission numbers, as many as
   * the segment takes. Events leave the hand-over only when their segment is open and holds their range, so a
   * live event taken back meanwhile always finds its place (see `segmentAfter`).
   */
  private async writeOutbox(): Promise<void> {
    const { maxBytes, segmentBytes } = this.options;
    const active = this.active;
    const firstSeq = this.outboxSeqs[0]!;
    if (active === undefined) {
      try {
        await this.openSegment(firstSeq);
      } catch (error) {
        // No file to write to: what waits is dropped (later events try a new file).
        const dropped = this.outbox.length;
        this.outbox = [];
        this.outboxSeqs = [];
        this.outboxBytes = 0;
        this.outboxForced = 0;
        this.outboxForcedBytes = 0;
        this.forced.clear();
        this.hooks.onDrop("spill-failed", dropped);
        this.hooks.onError(error);
      }
      return;
    }
    // A gap in the emission numbers (the events between went to memory and may come back to be written
    // between these) or a full segment starts a new one.
    const expected = active.maxSeq === undefined ? active.minSeq : active.maxSeq + 1;
    if (
      firstSeq !== expected ||
      (active.records > 0 && active.bytes + recordSize(this.outbox[0]!.bytes) > segmentBytes)
    ) {
      await this.seal();
      return;
    }
    const jsons: string[] = [];
    const sizes: number[] = [];
    let runBytes = 0;
    let full = 0;
    let lastSeq: number | undefined;
    let i = 0;
    for (; i < this.outbox.length; i++) {
      const event = this.outbox[i]!;
      const seq = this.outboxSeqs[i]!;
      const size = recordSize(event.bytes);
      if (this.diskBytes + runBytes + size > maxBytes) {
        full++;
        continue;
      }
      if (seq !== (lastSeq ?? firstSeq - 1) + 1) break;
      if (jsons.length > 0 && active.bytes + runBytes + size > segmentBytes) break;
      jsons.push(event.json);
      sizes.push(event.bytes);
      runBytes += size;
      lastSeq = seq;
    }
    const taken = this.outbox.splice(0, i);
    this.outboxSeqs.splice(0, i);
    for (const event of taken) {
      this.outboxBytes -= event.bytes;
      if (this.forced.delete(event)) {
        this.outboxForced--;
        this.outboxForcedBytes -= event.bytes;
      }
    }
    if (full > 0) this.hooks.onDrop("spill-full", full);
    if (jsons.length === 0) return;
    active.maxSeq = lastSeq;
    this.writing += jsons.length;
    this.writingBytes += runBytes;
    let failure: unknown;
    let written: Written = { records: 0, bytes: 0 };
    try {
      written = await this.writeRecords(this.handle!, active, encodeRecords(jsons, sizes));
    } catch (error) {
      failure = error;
    }
    active.bytes += written.bytes;
    active.records += written.records;
    this.diskBytes += written.bytes;
    this.countWritten(written.records, jsons.length, runBytes, written.failure ?? failure);
    if (written.failure !== undefined || failure !== undefined) {
      // Start afresh: the file may end in a partial record, which the reader skips as a torn tail.
      await this.seal().catch(() => undefined);
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
   * Writes the events taken back between segments, each group into new segments numbered between the segment
   * it goes in front of and the one before, inserted there in the replay order. A segment loaded for replay
   * and partly handed out is unloaded by the next load (see `loadOldest`), so its remaining records come
   * after events written in front of it.
   */
  private async writeInserts(): Promise<void> {
    this.writingInserts = true;
    try {
      const inserts = [...this.inserts.values()];
      this.inserts = new Map();
      this.insertCount = 0;
      this.insertBytes = 0;
      // All of them are being written now (the books must not lose the groups that wait for the first).
      for (const { live, replayed } of inserts) {
        this.writing += live.length + replayed.length;
        for (const { event } of live) this.writingBytes += recordSize(event.bytes);
        for (const { event } of replayed) this.writingBytes += recordSize(event.bytes);
      }
      for (const insert of inserts) {
        try {
          await this.writeInsert(insert);
        } finally {
          insert.anchor.pins--;
          this.maybeDelete(insert.anchor);
        }
      }
    } finally {
      this.writingInserts = false;
    }
    this.requestReplay();
  }

  private async writeInsert(insert: Insert): Promise<void> {
    const { anchor } = insert;
    insert.live.sort((a, b) => a.seq - b.seq);
    insert.replayed.sort((a, b) => a.index - b.index);
    const events: { event: EncodedEvent; seq: number | undefined }[] = [
      ...insert.live,
      ...insert.replayed.map(({ event }) => ({ event, seq: undefined })),
    ];
    const { maxBytes, segmentBytes } = this.options;
    // Split into segments of at most `segmentBytes`, within the budget, oldest first.
    type Run = { jsons: string[]; sizes: number[]; recordBytes: number; minSeq?: number; maxSeq?: number };
    const runs: Run[] = [];
    let run: Run = { jsons: [], sizes: [], recordBytes: 0 };
    let planned = 0;
    let full = 0;
    let fullBytes = 0;
    for (const { event, seq } of events) {
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
      // A replayed event lies within its segment's range.
      const low = seq ?? anchor.minSeq;
      const high = seq ?? anchor.maxSeq;
      if (low !== undefined) run.minSeq = Math.min(run.minSeq ?? low, low);
      if (high !== undefined) run.maxSeq = Math.max(run.maxSeq ?? high, high);
      planned += cost;
    }
    if (run.jsons.length > 0) runs.push(run);
    if (full > 0) {
      this.writing -= full;
      this.writingBytes -= fullBytes;
      this.hooks.onDrop("spill-full", full);
    }
    if (runs.length === 0) return;
    const place = this.placeBefore(anchor, runs.length);
    const mtimes = await this.insertMtimes(place.before, place.after, runs.length);
    const written: Segment[] = [];
    for (let r = 0; r < runs.length; r++) {
      const { jsons, sizes, recordBytes, minSeq, maxSeq } = runs[r]!;
      const path = join(this.directory, segmentFileName(place.numbers[r]!));
      let handle: FileHandle | undefined;
      let segment: Segment | undefined;
      let result: Written = { records: 0, bytes: 0 };
      let failure: unknown;
      try {
        handle = await this.createSegmentFile(path);
        segment = { ...newSegment(path), minSeq, maxSeq };
        this.diskBytes += segment.bytes;
        result = await this.writeRecords(handle, segment, encodeRecords(jsons, sizes));
        segment.bytes += result.bytes;
        segment.records += result.records;
        this.diskBytes += result.bytes;
        if (this.options.fsync === "segment" && result.failure === undefined) await handle.datasync();
        const mtime = mtimes?.[r];
        if (mtime !== undefined) await handle.utimes(mtime, mtime).catch(() => undefined);
      } catch (error) {
        failure = error;
      }
      await handle?.close().catch(() => undefined);
      this.countWritten(result.records, jsons.length, recordBytes, result.failure ?? failure);
      if (segment !== undefined) written.push(segment);
    }
    // The anchor is pinned, so still there; the segment before it may have gone meanwhile.
    const at = place.after === undefined ? this.segments.length : this.segments.indexOf(place.after);
    this.segments.splice(Math.max(at, 0), 0, ...written);
  }

  /**
   * Numbers for `count` new segments in front of `anchor`, strictly between its number and the one before it,
   * and the segments they go between. In front of the first segment they step down by {@link SEGMENT_STEP}.
   * When no number is free there (many insertions at one place), they go in front of every segment instead:
   * close to their place, as a segment taken back between two others is usually the oldest one left.
   */
  private placeBefore(
    anchor: Segment,
    count: number,
  ): { numbers: number[]; before: Segment | undefined; after: Segment | undefined } {
    const index = this.segments.indexOf(anchor);
    const before = index > 0 ? this.segments[index - 1] : undefined;
    const between = (low: number, high: number): number[] | undefined => {
      const step = Math.floor((high - low) / (count + 1));
      if (step < 1) return undefined;
      return Array.from({ length: count }, (_, r) => low + step * (r + 1));
    };
    const below = (high: number): number[] | undefined =>
      high - SEGMENT_STEP * count >= 0
        ? Array.from({ length: count }, (_, r) => high - SEGMENT_STEP * (count - r))
        : between(-1, high);
    const numbers = before === undefined ? below(anchor.number) : between(before.number, anchor.number);
    if (numbers !== undefined) return { numbers, before, after: anchor };
    const first = this.segments[0] ?? anchor;
    const front = below(first.number);
    if (front !== undefined) return { numbers: front, before: undefined, after: first };
    // Not even below the first: after everything (this cannot happen before ~500 000 insertions in front).
    const numbers2 = Array.from({ length: count }, () => {
      const n = this.nextSegment;
      this.nextSegment += SEGMENT_STEP;
      return n;
    });
    return { numbers: numbers2, before: undefined, after: undefined };
  }

  /**
   * Modification times (seconds) for `count` segments written between `before` and `after`, in that order
   * between theirs: a later process that adopts this slot as an orphan orders its segments by modification
   * time (then by name). Undefined when there is nothing to go between.
   */
  private async insertMtimes(
    before: Segment | undefined,
    after: Segment | undefined,
    count: number,
  ): Promise<number[] | undefined> {
    if (after === undefined) return undefined;
    try {
      const high = (await fs.promises.stat(after.path)).mtimeMs;
      const low = before === undefined ? undefined : (await fs.promises.stat(before.path)).mtimeMs;
      const times =
        low === undefined
          ? Array.from({ length: count }, (_, r) => high - (count - r))
          : low < high
            ? Array.from({ length: count }, (_, r) => low + ((high - low) * (r + 1)) / (count + 1))
            : Array.from({ length: count }, () => high);
      return times.map((ms) => ms / 1000);
    } catch {
      return undefined;
    }
  }

  /** Opens a new segment at the end for live events from emission number `firstSeq` on. */
  private async openSegment(firstSeq: number): Promise<void> {
    const path = join(this.directory, segmentFileName(this.nextSegment));
    this.nextSegment += SEGMENT_STEP;
    const handle = await this.createSegmentFile(path);
    const segment: Segment = { ...newSegment(path), minSeq: firstSeq };
    segment.writing = true;
    this.diskBytes += segment.bytes;
    this.segments.push(segment);
    this.active = segment;
    this.handle = handle;
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
   * out) is unloaded: its remaining records must come after the inserted segments', and holding it meanwhile
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
    if (!segment.drained || segment.outstanding > 0 || segment.writing || segment.pins > 0) return;
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
