import type { ServerResponse } from "node:http";
import { type CompareOptions, type CompareReport, compareEvents, decodeEvent } from "@streamll/core";
import { redactSecrets } from "@streamll/core/internal";
import type {
  HelloMessage,
  PriceTable,
  SourceStatus,
  StatusMessage,
  ViewerLimits,
  ViewerStats,
} from "../protocol";
import { ExecutionStore } from "./execution-store";

/** How often queued events are pushed to the pages. Short enough to feel live, long enough to batch. */
const FLUSH_INTERVAL_MS = 50;
/** Events per `events` message. */
const MAX_BATCH = 1_000;
/**
 * A page further behind than this is disconnected; it reconnects and resyncs. Counted over what happened since
 * it connected (live events and status, queued on its socket or waiting for its snapshot to be written), never
 * over the snapshot itself, which is written only as fast as the page reads it: a snapshot of any size loads.
 */
const MAX_CLIENT_BUFFER_BYTES = 16 * 1024 * 1024;
/**
 * A snapshot is written in messages of about this size, each once the socket took the previous one, so a page
 * being sent a big snapshot costs the server about this much, not a copy of everything held.
 */
const SNAPSHOT_MESSAGE_BYTES = 256 * 1024;
const STATUS_INTERVAL_MS = 1_000;
const KEEPALIVE_INTERVAL_MS = 15_000;
const MAX_ERROR_LENGTH = 300;

type Pending = { kind: "events"; lines: string[] } | { kind: "evict"; ids: string[] };

interface Client {
  readonly response: ServerResponse;
  /**
   * While its snapshot is being written: the messages broadcast meanwhile, written right after it. Undefined
   * once the page is live.
   */
  backlog: string[] | undefined;
  backlogBytes: number;
  /** Disconnected, dropped or shut down: its snapshot stops being written. */
  closed: boolean;
}

/** Settings of an {@link EventHub}. */
export interface EventHubOptions {
  readonly limits: ViewerLimits;
  readonly prices: PriceTable;
  readonly version: string;
}

/**
 * Receives event lines, keeps the last executions, and pushes what arrives to every connected page with
 * Server-Sent Events. `ingest` is synchronous and cheap: the pages are written to from a timer, and a page
 * that cannot keep up is disconnected rather than buffered without bound, so the producer never waits.
 */
export class EventHub {
  readonly store: ExecutionStore;
  private readonly clients = new Set<Client>();
  private pending: Pending[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly statusTimer: NodeJS.Timeout;
  private readonly keepAliveTimer: NodeJS.Timeout;
  private receivedCount = 0;
  private invalidCount = 0;
  private slowDropped = 0;
  private sourceStatus: SourceStatus = { kind: "sink", label: "", state: "live" };
  private lastStatus = "";
  /** Bumped on every change of the held events; the cached comparison is valid for one revision. */
  private revision = 0;
  private compared: { key: string; revision: number; report: CompareReport } | undefined;

  constructor(private readonly options: EventHubOptions) {
    this.store = new ExecutionStore(options.limits);
    // The timers never keep the process alive: the server (or its owner) decides that.
    this.statusTimer = setInterval(() => this.sendStatus(false), STATUS_INTERVAL_MS).unref();
    this.keepAliveTimer = setInterval(
      () => this.broadcast(": keepalive\n\n", true),
      KEEPALIVE_INTERVAL_MS,
    ).unref();
  }

  /**
   * Takes one line of JSON: a valid streamll event is kept and queued for the pages; anything else is counted
   * as invalid. Returns whether the line was an event.
   */
  ingest(line: string): boolean {
    this.receivedCount += 1;
    const decoded = decodeEvent(line);
    if (!decoded.ok) {
      this.invalidCount += 1;
      return false;
    }
    const event = decoded.event;
    // An SSE data line must not contain a line break; JSON text may have one between tokens.
    const json = /[\r\n]/.test(line) ? JSON.stringify(event) : line.trim();
    const { stored, evicted } = this.store.add(event.execution_id, json, event.event_type);
    if (evicted.length > 0) this.queue({ kind: "evict", ids: [...evicted] });
    if (stored) this.queue({ kind: "events", lines: [json] });
    this.revision += 1;
    this.scheduleFlush();
    return true;
  }

  /** Sets what the page shows as the source. */
  setSource(status: SourceStatus): void {
    // The page and the status API must never show `user:pass@` of a URL, whoever named the source.
    const label = redactSecrets(status.label, []);
    this.sourceStatus =
      status.error === undefined
        ? { ...status, label }
        : { ...status, label, error: redactSecrets(status.error, []).slice(0, MAX_ERROR_LENGTH) };
    this.sendStatus(true);
  }

  get stats(): ViewerStats {
    return {
      received: this.receivedCount,
      invalid: this.invalidCount,
      ...this.store.stats,
      clients: this.clients.size,
      slowClientsDropped: this.slowDropped,
    };
  }

  /**
   * Starts an event stream on `response`: the page's settings, every event held (oldest execution first),
   * then everything that arrives. The snapshot is written as fast as the page reads it; what arrives meanwhile
   * waits (within the slow-page limit) and follows it.
   */
  attach(response: ServerResponse): void {
    response.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    // Events queued before this page connected are in the store: push them to the others first so this page
    // does not see them twice.
    this.flush();
    const client: Client = { response, backlog: [], backlogBytes: 0, closed: false };
    this.clients.add(client);
    response.on("close", () => {
      client.closed = true;
      this.clients.delete(client);
    });
    // A write that throws (the socket broke in an unusual way) must not become an unhandled rejection that
    // ends the process: the page just reconnects.
    this.sendSnapshot(client, this.store.snapshot()).catch(() => response.destroy());
  }

  /**
   * The version comparison of `streamll compare` (core's `compareEvents`) over the executions held. Cached
   * until the held events change.
   */
  compare(options: CompareOptions): CompareReport {
    const key = JSON.stringify(options);
    if (this.compared?.key === key && this.compared.revision === this.revision) return this.compared.report;
    const report = compareEvents(parsedLines(this.store.lines()), options);
    this.compared = { key, revision: this.revision, report };
    return report;
  }

  /** Writes hello, `snapshot` and a status to `client`, each message once the socket took the last; then its backlog. */
  private async sendSnapshot(client: Client, snapshot: Iterable<string>): Promise<void> {
    const { response } = client;
    /** Writes `text`; resolves once the socket wants more. False once the page is gone. */
    const write = async (text: string): Promise<boolean> => {
      if (client.closed) return false;
      if (!response.write(text)) await drained(response);
      return !client.closed;
    };
    const hello: HelloMessage = {
      version: this.options.version,
      limits: this.options.limits,
      prices: this.options.prices,
    };
    if (!(await write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify(hello)}\n\n`))) return;
    let batch: string[] = [];
    let batchBytes = 0;
    for (const line of snapshot) {
      batch.push(line);
      batchBytes += line.length;
      if (batch.length === MAX_BATCH || batchBytes >= SNAPSHOT_MESSAGE_BYTES) {
        const message = eventsMessage(batch);
        batch = [];
        batchBytes = 0;
        if (!(await write(message))) return;
      }
    }
    if (batch.length > 0 && !(await write(eventsMessage(batch)))) return;
    if (!(await write(`event: status\ndata: ${this.statusJson()}\n\n`))) return;
    // Synchronously from here: nothing can be broadcast between writing the backlog and going live.
    const backlog = client.backlog ?? [];
    client.backlog = undefined;
    client.backlogBytes = 0;
    if (backlog.length > 0) response.write(backlog.join(""));
  }

  /** Ends every event stream and stops the timers. */
  close(): void {
    clearInterval(this.statusTimer);
    clearInterval(this.keepAliveTimer);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flush();
    for (const client of this.clients) {
      client.closed = true;
      client.response.end();
    }
    this.clients.clear();
  }

  private queue(item: Pending): void {
    const last = this.pending[this.pending.length - 1];
    if (item.kind === "events" && last?.kind === "events") last.lines.push(...item.lines);
    else if (item.kind === "evict" && last?.kind === "evict") last.ids.push(...item.ids);
    else this.pending.push(item);
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, FLUSH_INTERVAL_MS).unref();
  }

  /** Writes the queued events and evictions to every page, in the order they happened. */
  private flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    if (this.clients.size === 0) return;
    let text = "";
    for (const item of pending) {
      if (item.kind === "evict") {
        text += `event: evict\ndata: ${JSON.stringify(item.ids)}\n\n`;
        continue;
      }
      for (let offset = 0; offset < item.lines.length; offset += MAX_BATCH) {
        text += eventsMessage(item.lines.slice(offset, offset + MAX_BATCH));
      }
    }
    this.broadcast(text);
  }

  private broadcast(text: string, keepAlive = false): void {
    for (const client of this.clients) {
      if (client.backlog !== undefined) {
        // Its snapshot is still being written, which keeps the connection busy: no keepalive needed.
        if (keepAlive) continue;
        client.backlog.push(text);
        client.backlogBytes += text.length;
        if (client.backlogBytes > MAX_CLIENT_BUFFER_BYTES) this.drop(client);
        continue;
      }
      if (client.response.writableLength > MAX_CLIENT_BUFFER_BYTES) {
        this.drop(client);
        continue;
      }
      client.response.write(text);
    }
  }

  /**
   * Buffering more for a page that does not read would grow without bound: drop it. EventSource reconnects by
   * itself and gets a fresh copy of what is held.
   */
  private drop(client: Client): void {
    this.clients.delete(client);
    this.slowDropped += 1;
    client.closed = true;
    client.backlog = undefined;
    client.response.destroy();
  }

  private statusJson(): string {
    const status: StatusMessage = {
      source: this.sourceStatus,
      stats: this.stats,
      droppedByExecution: this.store.droppedByExecution(),
    };
    return JSON.stringify(status);
  }

  private sendStatus(force: boolean): void {
    const json = this.statusJson();
    if (!force && json === this.lastStatus) return;
    this.lastStatus = json;
    this.flush();
    this.broadcast(`event: status\ndata: ${json}\n\n`);
  }
}

/** Resolves once `response` wants more data, or is closed (then nothing more will be written to it). */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

function eventsMessage(lines: readonly string[]): string {
  return `event: events\ndata: [${lines.join(",")}]\n\n`;
}

function* parsedLines(lines: Iterable<string>): IterableIterator<unknown> {
  for (const line of lines) yield JSON.parse(line) as unknown;
}
