import { type EncodedEvent, type Sink, SinkError } from "@streamll/core";
import { v } from "@streamll/core/internal";
import { resolveViewerOptions, type ViewerOptions, viewerOptionsSchema } from "../server/viewer-options";
import { ViewerServer } from "../server/viewer-server";

/** Options of {@link ViewerSink}: the viewer's own (host, port, limits, …) and these. */
export interface ViewerSinkOptions extends ViewerOptions {
  /** Sink name shown in metrics. Default `viewer`. */
  name?: string;
  /**
   * Called with the page's URL once the viewer listens. Default: prints `streamll viewer: <url>` on stderr.
   */
  onUrl?: (url: string) => void;
}

/** `ViewerSinkOptions` as the constructor checks them. */
const viewerSinkOptionsSchema = viewerOptionsSchema.extend<ViewerSinkOptions>({
  name: v.string({ min: 1 }).optional(),
  onUrl: v.fn<(url: string) => void>().optional(),
});

/**
 * A sink that shows the process's own events in the browser, live: `configure({ sinks: [new ViewerSink()] })`
 * prints the page's URL. For development: the viewer listens on 127.0.0.1 (a random free port unless `port`),
 * keeps the last executions in memory (see the limits) and never holds the process open after `shutdown()`
 * (nor before it, unless `keepAlive`).
 */
export class ViewerSink implements Sink {
  readonly name: string;
  /** Resolves to the running viewer once it listens; rejects if it could not start (e.g. the port is taken). */
  readonly ready: Promise<ViewerServer>;
  private server: ViewerServer | undefined;
  private closed = false;

  constructor(options: ViewerSinkOptions = {}) {
    // Checked here, so a misspelled option fails at `new ViewerSink()`, not later in the pipeline.
    const resolved = resolveViewerOptions(options, "ViewerSink", viewerSinkOptionsSchema);
    this.name = options.name ?? "viewer";
    const onUrl = options.onUrl ?? ((url: string) => void process.stderr.write(`streamll viewer: ${url}\n`));
    this.ready = ViewerServer.start(options, viewerSinkOptionsSchema).then((server) => {
      this.server = server;
      server.setSource({ kind: "sink", label: this.name, state: "live" });
      if (this.closed) void server.close();
      else onUrl(server.url);
      return server;
    });
    // Reported once here; `send` turns it into a permanent sink error instead of retrying.
    this.ready.catch((error: unknown) => {
      resolved.onWarning(
        `the viewer could not start: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
  }

  /** The page's URL once the viewer listens. */
  get url(): string | undefined {
    return this.server?.url;
  }

  async send(batch: readonly EncodedEvent[]): Promise<void> {
    if (this.closed) {
      throw new SinkError(`sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    let server: ViewerServer;
    try {
      server = await this.ready;
    } catch (error) {
      throw new SinkError(`sink ${this.name}: the viewer is not running`, { retriable: false, cause: error });
    }
    for (const event of batch) server.ingest(event.json);
  }

  /** Closes the viewer: the page shows the run as ended and the port is released. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const server = await this.ready.catch(() => undefined);
    server?.setSource({ kind: "sink", label: this.name, state: "ended" });
    await server?.close();
  }
}
