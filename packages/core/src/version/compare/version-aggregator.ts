import { quantile } from "./stats";

/** Per-version numbers `streamll compare` prints. Field names are snake_case, like the events. */
export interface VersionSummary {
  readonly module: string;
  /** null for events without a signature (version tracking off, or native code). */
  readonly code_signature: string | null;
  /** From this version's `version` event; null when the events hold none. */
  readonly strategy: string | null;
  readonly module_version: string | null;
  readonly git_commit: string | null;
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
  readonly signature: string | null;
  strategy: string | null;
  moduleVersion: string | null;
  gitCommit: string | null;
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
}

/** Durations of one version, for the comparison tests. */
export interface VersionSamples {
  readonly summary: VersionSummary;
  /** Durations (ms) of calls that ended without error. */
  readonly durations: readonly number[];
}

const NO_SIGNATURE = "\u0000none";

/**
 * Folds events, one at a time, into per-(module, code_signature) groups. Keeps only counters and the
 * duration of each call, so files far larger than memory's worth of events can be read.
 */
export class VersionAggregator {
  /** Lines that were not JSON objects with a `module_name` and an `event_type`. */
  invalid = 0;
  /** Events accepted. */
  events = 0;
  private readonly groups = new Map<string, Group>();
  private readonly moduleFilter: string | null;

  constructor(options: { module?: string | null } = {}) {
    this.moduleFilter = options.module ?? null;
  }

  /** Adds one parsed event; anything that is not an event is counted in `invalid`. */
  add(value: unknown): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.invalid++;
      return;
    }
    const event = value as Record<string, unknown>;
    const module = event.module_name;
    const type = event.event_type;
    if (typeof module !== "string" || typeof type !== "string") {
      this.invalid++;
      return;
    }
    this.events++;
    if (this.moduleFilter !== null && module !== this.moduleFilter) return;
    const signature = typeof event.code_signature === "string" ? event.code_signature : null;
    const group = this.group(module, signature);
    const data = (typeof event.data === "object" && event.data !== null ? event.data : {}) as Record<
      string,
      unknown
    >;
    const timestamp = typeof event.timestamp === "string" ? event.timestamp : null;
    if (timestamp !== null) {
      if (group.firstSeen === null || timestamp < group.firstSeen) group.firstSeen = timestamp;
      if (group.lastSeen === null || timestamp > group.lastSeen) group.lastSeen = timestamp;
    }
    if (group.moduleVersion === null && typeof event.module_version === "string") {
      group.moduleVersion = event.module_version;
    }
    if (group.gitCommit === null && typeof event.git_commit === "string") group.gitCommit = event.git_commit;
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
        if (typeof data.strategy === "string") group.strategy = data.strategy;
        if (typeof data.module_version === "string") group.moduleVersion = data.module_version;
        if (typeof data.git_commit === "string") group.gitCommit = data.git_commit;
        break;
      default:
        break;
    }
  }

  /** Every version seen, grouped by module (in name order) and by first appearance within a module. */
  versions(): VersionSamples[] {
    const result: VersionSamples[] = [];
    for (const group of this.groups.values()) {
      result.push({ summary: summarize(group), durations: group.durations });
    }
    return result.sort((a, b) => {
      if (a.summary.module !== b.summary.module) return a.summary.module < b.summary.module ? -1 : 1;
      return (a.summary.first_seen ?? "").localeCompare(b.summary.first_seen ?? "");
    });
  }

  private group(module: string, signature: string | null): Group {
    const key = `${module}\u0000${signature ?? NO_SIGNATURE}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = {
        module,
        signature,
        strategy: null,
        moduleVersion: null,
        gitCommit: null,
        starts: 0,
        calls: 0,
        errors: 0,
        durations: [],
        tokenEvents: 0,
        tokenCount: 0,
        usage: {},
        firstSeen: null,
        lastSeen: null,
      };
      this.groups.set(key, group);
    }
    return group;
  }
}

function addUsage(target: Record<string, number>, usage: unknown): void {
  if (typeof usage !== "object" || usage === null || Array.isArray(usage)) return;
  for (const [key, value] of Object.entries(usage)) {
    if (typeof value === "number" && Number.isFinite(value)) target[key] = (target[key] ?? 0) + value;
  }
}

function summarize(group: Group): VersionSummary {
  const sorted = Float64Array.from(group.durations).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    module: group.module,
    code_signature: group.signature,
    strategy: group.strategy,
    module_version: group.moduleVersion,
    git_commit: group.gitCommit,
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
