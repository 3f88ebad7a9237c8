import { v } from "../../options/schema";

/**
 * When the spill forces written segments to stable storage. Every policy survives a crash of the process
 * (written data is in the OS page cache); they differ in what a power loss or kernel crash can take:
 * - `"never"`: the OS writes back when it likes (typically within 30 s). Cheapest.
 * - `"segment"`: each segment is synced when it is complete and at shutdown: at most the segment being
 *   written can be lost. One sync per `segmentBytes`.
 * - `"batch"`: every write batch is synced before the next one starts. Nothing acknowledged to the spill's
 *   counters is lost, at the price of one sync per write (a few ms on SSDs, much more on network disks).
 */
export type SpillFsyncPolicy = "never" | "segment" | "batch";

/**
 * Disk spill for one sink (opt-in): when the queue is full or the circuit breaker is open, encoded events go
 * to append-only segment files in a directory of this sink's own instead of being dropped, and are replayed,
 * oldest first and rate limited, once the sink delivers again, also by the next process when this one exits
 * or crashes first. Events are dropped (`spill-full`) only when the disk budget is exhausted.
 */
export interface SpillOptions {
  /**
   * Directory for the spill. Each sink gets a subdirectory of its own (see `name`), each live process a slot
   * in it; created when missing. It must be writable: `configure()` throws a `ConfigurationError` otherwise.
   */
  directory: string;
  /**
   * Name of this sink's subdirectory. Default: derived from the sink's name (`kafka:events` becomes
   * `kafka_events-<hash>`), so the same sink finds its segments again after a restart. Set it when two sinks
   * share a name, or to keep the directory when you rename a sink.
   */
  name?: string;
  /** Maximum bytes of segment files this sink keeps on disk. Default 1 GiB (1 073 741 824). */
  maxBytes?: number;
  /** Size at which a segment file is closed and a new one started. Default 8 MiB; at most `maxBytes`. */
  segmentBytes?: number;
  /** When writes are synced to stable storage; see {@link SpillFsyncPolicy}. Default `"segment"`. */
  fsync?: SpillFsyncPolicy;
  /**
   * Events per second replayed from disk once the sink delivers again. Replayed events share the queue and
   * the batches with live events, so this bounds the extra load on the broker. Default 5 000.
   */
  replayRate?: number;
}

/** `SpillOptions` with every default filled in. */
export interface ResolvedSpillOptions {
  readonly directory: string;
  readonly name: string | undefined;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly fsync: SpillFsyncPolicy;
  readonly replayRate: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_SPILL_OPTIONS = Object.freeze({
  maxBytes: 1024 * MiB,
  segmentBytes: 8 * MiB,
  fsync: "segment" as SpillFsyncPolicy,
  replayRate: 5_000,
});

/** A subdirectory name: a single path segment of safe characters. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const spillOptionsSchema = v.object<SpillOptions>({
  directory: v.string({ min: 1 }),
  name: v
    .string({
      pattern: NAME_PATTERN,
      expected: "a directory name of letters, digits, ., _ and - (at most 100, not starting with . _ -)",
    })
    .optional(),
  maxBytes: v.integer({ min: 4096 }).optional(),
  segmentBytes: v.integer({ min: 1024 }).optional(),
  fsync: v.oneOf(["never", "segment", "batch"]).optional(),
  replayRate: v.number({ min: 1 }).optional(),
});

export function resolveSpillOptions(options: SpillOptions): ResolvedSpillOptions {
  const d = DEFAULT_SPILL_OPTIONS;
  const maxBytes = options.maxBytes ?? d.maxBytes;
  return Object.freeze({
    directory: options.directory,
    name: options.name,
    maxBytes,
    segmentBytes: Math.min(options.segmentBytes ?? d.segmentBytes, maxBytes),
    fsync: options.fsync ?? d.fsync,
    replayRate: options.replayRate ?? d.replayRate,
  });
}
