/**
 * What the server sends the page over the event stream (`hello`, `status`; `events` carries event JSON and
 * `evict` execution ids). Plain types shared by the server and the page, with no imports, so the page's build
 * stays free of Node.
 */

/** US dollars per million tokens of one model, for the cost column. */
export interface ModelPrice {
  readonly inputPerMillion: number;
  readonly outputPerMillion: number;
}

/** Model name → price. */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** What the viewer keeps in memory. Every limit is enforced on each event, so memory cannot grow past them. */
export interface ViewerLimits {
  /** Executions kept; when a new one starts beyond this, the oldest is dropped. Default 1,000. */
  maxExecutions: number;
  /**
   * Characters of event JSON kept across all executions (about bytes for ASCII text); the oldest executions
   * are dropped to stay below it. Default 64 MiB.
   */
  maxBytes: number;
  /**
   * Events kept per execution. Past it, `token` and custom events of that execution are dropped (counted and
   * shown on the page); `start`, `end`, `error` and `version` events are kept up to twice the limit, so the
   * span tree stays whole. Default 5,000.
   */
  maxEventsPerExecution: number;
}

/** What feeds the viewer, as shown on the page. */
export interface SourceStatus {
  /** `file`, `stdin` or `sink`. */
  readonly kind: "file" | "stdin" | "sink";
  /** The file's path, `stdin`, or the sink's name. */
  readonly label: string;
  /** `live` while events may still come; `ended` once stdin closed or the sink shut down. */
  readonly state: "live" | "ended";
  /** The last read problem, if any (e.g. the file does not exist yet). */
  readonly error?: string;
}

/** Counters of everything the viewer received, kept and dropped. */
export interface ViewerStats {
  /** Lines or events received. */
  readonly received: number;
  /** Received lines that were not valid streamll events (skipped). */
  readonly invalid: number;
  /** Executions held now. */
  readonly executions: number;
  /** Events held now. */
  readonly events: number;
  /** Characters of event JSON held now. */
  readonly bytes: number;
  /** Executions dropped to stay within `maxExecutions` / `maxBytes`. */
  readonly evictedExecutions: number;
  /** Events dropped by the per-execution limits. */
  readonly droppedEvents: number;
  /** Pages connected now. */
  readonly clients: number;
  /** Pages disconnected because they fell too far behind (they reconnect). */
  readonly slowClientsDropped: number;
}

/** The first message of every (re)connection: the page starts from scratch with it. */
export interface HelloMessage {
  readonly version: string;
  readonly limits: ViewerLimits;
  readonly prices: PriceTable;
}

/** Sent when anything it holds changed (at most once a second) and whenever the source changes. */
export interface StatusMessage {
  readonly source: SourceStatus;
  readonly stats: ViewerStats;
  /** Per execution, events dropped by `maxEventsPerExecution` (only executions that dropped some). */
  readonly droppedByExecution: Readonly<Record<string, number>>;
}
