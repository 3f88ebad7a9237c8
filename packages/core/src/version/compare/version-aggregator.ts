import { EventIdSet } from "./event-id-set";
import { quantile } from "./stats";

/** Per-version numbers `streamll compare` prints. Field names are snake_case, like the events. */
export interface VersionSummary {
  readonly module: string;
  /** `method_name` of the calls, e.g. `forward`; null for events that carry none. */
  readonly method: string | null;
  /**
   * null for module calls; the `operation` of a `trace()` step (or of a call instrumented with `operation`):
   * steps are counted in rows of their own, never as calls of their module.
   */
  readonly operation: string | null;
  /** null for events without a signature (version tracking off, or native code). */
  readonly code_signature: string | null;
  /** From the `version` event of this module and signature; null when the events hold none. */
  readonly strategy: string | null;
  /** The first `module_version` seen for this version (of `module_versions`); null when none was. */
  readonly module_version: string | null;
  /**
   * Every distinct `module_version` seen with this signature, in the order first seen: one signature can run
   * under several labels (the same code released twice, or built from two commits).
   */
  readonly module_versions: readonly string[];
  /** The first `git_commit` seen for this version (of `git_commits`); null when none was. */
  readonly git_commit: string | null;
  /** Every distinct `git_commit` seen with this signature, in the order first seen. */
  readonly git_commits: readonly string[];
  /** Finished calls: `end` plus `error` events. */
  readonly calls: number;
  readonly errors: number;
  /** `errors / calls`, 0 without calls. */
  readonly error_rate: number;
  /** `start` events minus finished calls (calls still running when the file was written, or dropped events). */
  readonly unfinished: number;
  /** Over calls that ended without error and reported `duration_ms`; null when none did. */
  readonly duration_ms: {
    readonly p50: number;
    readonly p95: number;
    readonly p99: number;
    readonly mean: number;
  } | null;
  /** `token` events (one per streamed chunk). */
  readonly token_events: number;
  /** Sum of `token_count` on `end` events of streams. */
  readonly token_count: number;
  /** Sums of numeric `usage` fields (e.g. `prompt_tokens`, `output_tokens`) found on `end` events. */
  readonly usage: Readonly<Record<string, number>>;
  readonly first_seen: string | null;
  readonly last_seen: string | null;
}

interface Group {
  readonly module: string;
  readonly method: string | null;
  readonly operation: string | null;
  readonly signature: string | null;
  /** Distinct values, in the order first seen. */
  readonly moduleVersions: Set<string>;
  readonly gitCommits: Set<string>;
  starts: number;
  calls: number;
  errors: number;
  /**
   * Durations of calls that ended without error. Failed calls are left out of latency: a call that fails
   * fast would otherwise look like a speed-up.
   */
  durations: number[];
  tokenEvents: number;
  tokenCount: number;
  usage: Record<string, number>;
  firstSeen: string | null;
  lastSeen: string | null;
  /** `firstSeen` and `lastSeen` as epoch milliseconds: the strings only sort by time when spelled alike. */
  firstSeenMs: number;
  lastSeenMs: number;
  /**
   * Every valid timestamp of the version's events, as epoch milliseconds (8 bytes an event): versions of a row
   * are ordered by their median, which one skewed clock cannot move the way it moves the earliest.
   */
  times: number[];
}

/** Durations of one version, for the comparison tests. */
export interface VersionSamples {
  readonly summary: VersionSummary;
  /** Durations (ms) of calls that ended without error. */
  readonly durations: readonly number[];
}

const NO_SIGNATURE = "\u0000none";

/**
 * The shape the event schema requires of `timestamp` (events/event-schema.ts): ISO-8601 in UTC ending in Z.
 * `Date.parse` alone also takes local-time and other spellings.
 */
const ISO_UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

/**
 * Folds events, one at a time, into groups per module, method, operation and code_signature: a module's calls
 * (`operation` null) and each of its `trace()` steps are separate rows. Keeps only counters and the
 * duration of each call, so files far larger than memory's worth of events can be read.
 */
export class VersionAggregator {
  /**
   * Inputs that were not events: for files, lines `decodeEvent` rejects (the reader counts them); here, values
   * that are not objects with a non-empty `module_name` and `event_type`.
   */
  invalid = 0;
  /** Events accepted, each `event_id` once. */
  events = 0;
  /**
   * Events skipped because an event with the same `event_id` was already added: delivery is at least once, so
   * a redelivered event (or a file read twice) must not count as another call.
   */
  duplicates = 0;
  /** Every `module_name` seen, whether or not it passed the module filter. */
  readonly modules = new Set<string>();
  /** `event_id`s seen so far (only the ids are kept, never the events). */
  private readonly eventIds = new EventIdSet();
  private readonly groups = new Map<string, Group>();
  /**
   * `data.strategy` of `version` events by module and signature: a version event is emitted on the module's
   * call, and the module's `trace()` steps (which carry the same signature) share it.
   */
  private readonly strategies = new Map<string, string>();
  private readonly moduleFilter: string | null;

  constructor(options: { module?: string | null } = {}) {
    this.moduleFilter = options.module ?? null;
  }

  /**
   * Adds one parsed event; anything that is not an event is counted in `invalid`. Values are not checked
   * against the full event schema here (callers pass events they decoded, or build in tests); only what
   * grouping and ordering rely on.
   */
  add(value: unknown): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.invalid++;
      return;
    }
    const event = value as Record<string, unknown>;
    const module = event.module_name;
    const type = event.event_type;
    // An empty name would be printed as a module nobody can select with --module.
    if (typeof module !== "string" || module === "" || typeof type !== "string" || type === "") {
      this.invalid++;
      return;
    }
    const id = event.event_id;
    if (typeof id === "string" && !this.eventIds.add(id)) {
      this.duplicates++;
      return;
    }
    this.events++;
    this.modules.add(module);
    if (this.moduleFilter !== null && module !== this.moduleFilter) return;
    const signature = typeof event.code_signature === "string" ? event.code_signature : null;
    const method = typeof event.method_name === "string" ? event.method_name : null;
    const operation = typeof event.operation === "string" ? event.operation : null;
    const group = this.group(module, method, operation, signature);
    const data = (typeof event.data === "object" && event.data !== null ? event.data : {}) as Record<
      string,
      unknown
    >;
    // Compared as times, not strings: a timestamp that is not one (`1970-01-01 (bad)` sorts first as a
    // string) must not make a version the baseline.
    const timestamp = typeof event.timestamp === "string" ? event.timestamp : null;
    const ms = timestamp !== null && ISO_UTC_TIMESTAMP.test(timestamp) ? Date.parse(timestamp) : Number.NaN;
    if (timestamp !== null && !Number.isNaN(ms)) {
      group.times.push(ms);
      if (group.firstSeen === null || ms < group.firstSeenMs) {
        group.firstSeen = timestamp;
        group.firstSeenMs = ms;
      }
      if (group.lastSeen === null || ms > group.lastSeenMs) {
        group.lastSeen = timestamp;
        group.lastSeenMs = ms;
      }
    }
    if (typeof event.module_version === "string") group.moduleVersions.add(event.module_version);
    if (typeof event.git_commit === "string") group.gitCommits.add(event.git_commit);
    switch (type) {
      case "start":
        group.starts++;
        break;
      case "end":
      case "error": {
        group.calls++;
        if (type === "error") {
          group.errors++;
          break;
        }
        const duration = data.duration_ms;
        if (typeof duration === "number" && Number.isFinite(duration) && duration >= 0)
          group.durations.push(duration);
        if (typeof data.token_count === "number" && Number.isFinite(data.token_count)) {
          group.tokenCount += data.token_count;
        }
        addUsage(group.usage, data.usage);
        break;
      }
      case "token":
        group.tokenEvents++;
        break;
      case "version":
        if (typeof data.strategy === "string")
          this.strategies.set(versionKey(module, signature), data.strategy);
        if (typeof data.module_version === "string") group.moduleVersions.add(data.module_version);
        if (typeof data.git_commit === "string") group.gitCommits.add(data.git_commit);
        break;
      default:
        break;
    }
  }

  /**
   * Every version of every row (module, method, operation) that saw a call, a `start` or a token, in row
   * order (name order, a module's calls before its operations), then within a row by the median timestamp of
   * each version's events (earliest first event on a tie).
   *
   * Which version "appeared first" decides the default baseline, so it is the median, not the earliest
   * timestamp: one event stamped by a skewed clock (a 1970 timestamp from a host whose clock was not set yet)
   * would otherwise turn the newer version into the baseline and a regression into an improvement.
   */
  versions(): VersionSamples[] {
    const result: { samples: VersionSamples; key: string; medianMs: number; firstSeenMs: number }[] = [];
    for (const group of this.groups.values()) {
      // Rows holding only `version` or custom events have nothing to count.
      if (group.starts === 0 && group.calls === 0 && group.tokenEvents === 0) continue;
      const strategy = this.strategies.get(versionKey(group.module, group.signature)) ?? null;
      const samples = { summary: summarize(group, strategy), durations: group.durations };
      // A version without any timestamp sorts last in its row (it was never seen "first").
      const firstSeenMs = group.firstSeen === null ? Number.POSITIVE_INFINITY : group.firstSeenMs;
      const medianMs = group.times.length === 0 ? Number.POSITIVE_INFINITY : median(group.times);
      result.push({ samples, key: rowKey(samples.summary), medianMs, firstSeenMs });
    }
    result.sort((a, b) => {
      if (a.key !== b.key) return a.key < b.key ? -1 : 1;
      if (a.medianMs !== b.medianMs) return a.medianMs < b.medianMs ? -1 : 1;
      return a.firstSeenMs === b.firstSeenMs ? 0 : a.firstSeenMs < b.firstSeenMs ? -1 : 1;
    });
    return result.map((entry) => entry.samples);
  }

  private group(
    module: string,
    method: string | null,
    operation: string | null,
    signature: string | null,
  ): Group {
    const key = `${rowKey({ module, method, operation })}\u0000${versionKey(module, signature)}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = {
        module,
        method,
        operation,
        signature,
        moduleVersions: new Set(),
        gitCommits: new Set(),
        starts: 0,
        calls: 0,
        errors: 0,
        durations: [],
        tokenEvents: 0,
        tokenCount: 0,
        usage: {},
        firstSeen: null,
        lastSeen: null,
        firstSeenMs: Number.NaN,
        lastSeenMs: Number.NaN,
        times: [],
      };
      this.groups.set(key, group);
    }
    return group;
  }
}

/**
 * The row a version belongs to: module, method and operation; it sorts a module's calls (no operation) before
 * its operations. Versions of one row are compared with each other.
 */
export function rowKey(summary: Pick<VersionSummary, "module" | "method" | "operation">): string {
  const method = summary.method === null ? "\u0000" : `\u0001${summary.method}`;
  const operation = summary.operation === null ? "\u0000" : `\u0001${summary.operation}`;
  return `${summary.module}\u0000${method}\u0000${operation}`;
}

function versionKey(module: string, signature: string | null): string {
  return `${module}\u0000${signature ?? NO_SIGNATURE}`;
}

/** The median of `values` (not empty), without reordering them. */
function median(values: readonly number[]): number {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function addUsage(target: Record<string, number>, usage: unknown): void {
  if (typeof usage !== "object" || usage === null || Array.isArray(usage)) return;
  for (const [key, value] of Object.entries(usage)) {
    if (typeof value === "number" && Number.isFinite(value)) target[key] = (target[key] ?? 0) + value;
  }
}

function first(values: ReadonlySet<string>): string | null {
  for (const value of values) return value;
  return null;
}

function summarize(group: Group, strategy: string | null): VersionSummary {
  const sorted = Float64Array.from(group.durations).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    module: group.module,
    method: group.method,
    operation: group.operation,
    code_signature: group.signature,
    strategy,
    module_version: first(group.moduleVersions),
    module_versions: [...group.moduleVersions],
    git_commit: first(group.gitCommits),
    git_commits: [...group.gitCommits],
    calls: group.calls,
    errors: group.errors,
    error_rate: group.calls === 0 ? 0 : group.errors / group.calls,
    unfinished: Math.max(0, group.starts - group.calls),
    duration_ms:
      sorted.length === 0
        ? null
        : {
            p50: quantile(sorted, 0.5),
            p95: quantile(sorted, 0.95),
            p99: quantile(sorted, 0.99),
            mean: sum / sorted.length,
          },
    token_events: group.tokenEvents,
    token_count: group.tokenCount,
    usage: { ...group.usage },
    first_seen: group.firstSeen,
    last_seen: group.lastSeen,
  };
}
