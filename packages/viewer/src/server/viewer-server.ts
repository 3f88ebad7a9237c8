import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP, type Socket } from "node:net";
import type { CompareOptions } from "@streamll/core";
import type { AnySchema } from "@streamll/core/internal";
import { version } from "../../package.json";
import type { SourceStatus, ViewerLimits, ViewerStats } from "../protocol";
import { EventHub } from "./event-hub";
import { createToken, hasToken, hostAllowed, isLoopbackHost, SECURITY_HEADERS } from "./security";
import { loadUiAssets, pageHtml } from "./ui-assets";
import { type ResolvedViewerOptions, resolveViewerOptions, type ViewerOptions } from "./viewer-options";

/** Compare options the page may pass as query parameters. */
const COMPARE_PARAMS = ["module", "baseline", "candidate"] as const;

/**
 * A running viewer: a local HTTP server that serves the page and pushes events to it. Feed it lines with
 * {@link ViewerServer.ingest}; {@link startViewer} creates one.
 */
export class ViewerServer {
  /** The page's address, token included: open it in a browser. */
  readonly url: string;
  /** The per-run token the page and the event stream require. */
  readonly token: string;
  readonly host: string;
  readonly port: number;
  readonly limits: ViewerLimits;
  private readonly hub: EventHub;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    options: ResolvedViewerOptions,
    token: string,
    hub: EventHub,
    /** Open connections: closed at once on `close()` (an event stream never ends by itself). */
    private readonly sockets: ReadonlySet<Socket>,
  ) {
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the viewer has no TCP address");
    this.token = token;
    this.host = options.host;
    this.port = address.port;
    this.limits = options.limits;
    this.hub = hub;
    // A wildcard address is no place to point a browser at: show this machine's loopback address instead.
    const name =
      address.address === "0.0.0.0" ? "127.0.0.1" : address.address === "::" ? "::1" : address.address;
    const shown = address.family === "IPv6" ? `[${name}]` : name;
    this.url = `http://${shown}:${this.port}/?token=${token}`;
  }

  /** Starts listening. Resolves once the port is bound. */
  static async start(options: ViewerOptions = {}, schema?: AnySchema): Promise<ViewerServer> {
    const resolved = resolveViewerOptions(options, "viewer", schema);
    const token = resolved.token ?? createToken();
    const hub = new EventHub({ limits: resolved.limits, prices: resolved.prices, version });
    const loopback = isLoopbackHost(resolved.host);
    const assets = loadUiAssets();
    const sockets = new Set<Socket>();
    const server = createServer((request, response) => {
      handle(request, response, { token, loopback, hub, assets });
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      if (!resolved.keepAlive) socket.unref();
    });
    server.listen(resolved.port, resolved.host);
    try {
      await once(server, "listening");
    } catch (error) {
      hub.close();
      throw listenError(error, options.host);
    }
    if (!resolved.keepAlive) server.unref();
    if (!loopback) {
      resolved.onWarning(
        `warning: listening on ${resolved.host}, not only on this machine: anyone on the network who has the ` +
          "URL (token included) can read every event. Use the default 127.0.0.1 unless you need this.",
      );
    }
    return new ViewerServer(server, resolved, token, hub, sockets);
  }

  /**
   * Takes one line of JSON (one event). Returns whether it was a valid streamll event; anything else is counted
   * as invalid. Synchronous and cheap: pages are written to later, from a timer.
   */
  ingest(line: string): boolean {
    return this.hub.ingest(line);
  }

  /** Sets what the page shows as the source of the events. */
  setSource(status: SourceStatus): void {
    this.hub.setSource(status);
  }

  get stats(): ViewerStats {
    return this.hub.stats;
  }

  /** The comparison `streamll compare` would print for the executions held. */
  compare(options: CompareOptions = {}) {
    return this.hub.compare(options);
  }

  /** Ends the event streams, closes every connection and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.hub.close();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    })();
    return this.closing;
  }
}

/**
 * The error of a failed listen, without the `host` option's value unless it is an IP address: a name that does
 * not resolve may be a token pasted in the wrong place (`sk-live-…` looks like a host name), and Node's message
 * (`getaddrinfo ENOTFOUND <host>`) would print it. The code is kept; the original is not attached as a cause,
 * since printing the error would print the cause too.
 */
function listenError(error: unknown, host: string | undefined): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  let safe: string;
  if (host === undefined || isIP(host.replace(/^\[|\]$/g, "").replace(/%.*$/, "")) !== 0) safe = message;
  else if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_FAIL" || code === "EAI_NONAME") {
    safe =
      "the host option does not resolve to an address; give an interface of this machine, e.g. 127.0.0.1";
  } else if (code === "EADDRNOTAVAIL") safe = "the host option is not an address of this machine";
  else safe = message.split(host).join("<host>");
  return Object.assign(new Error(safe), typeof code === "string" ? { code } : {});
}

/** Starts a viewer (see {@link ViewerOptions}); feed it with `ingest(line)`. */
export function startViewer(options: ViewerOptions = {}): Promise<ViewerServer> {
  return ViewerServer.start(options);
}

interface Context {
  readonly token: string;
  readonly loopback: boolean;
  readonly hub: EventHub;
  readonly assets: ReturnType<typeof loadUiAssets>;
}

function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  head: boolean,
): void {
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
  });
  response.end(head ? undefined : body);
}

function handle(request: IncomingMessage, response: ServerResponse, context: Context): void {
  const text = (status: number, message: string) =>
    send(response, status, "text/plain; charset=utf-8", `${message}\n`, request.method === "HEAD");
  if (!hostAllowed(request, context.loopback)) {
    text(421, "this viewer answers only requests addressed to localhost");
    return;
  }
  const url = new URL(request.url ?? "/", "http://viewer.invalid");
  if (!hasToken(request, url, context.token)) {
    text(403, "missing or wrong token: open the URL the viewer printed, token included");
    return;
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.setHeader("Allow", "GET, HEAD");
    text(405, "method not allowed");
    return;
  }
  const head = request.method === "HEAD";
  switch (url.pathname) {
    case "/":
    case "/index.html":
      send(response, 200, "text/html; charset=utf-8", pageHtml(context.token), head);
      return;
    case "/app.js":
      send(response, 200, "text/javascript; charset=utf-8", context.assets.script, head);
      return;
    case "/app.css":
      send(response, 200, "text/css; charset=utf-8", context.assets.style, head);
      return;
    case "/events":
      if (head) {
        text(200, "");
        return;
      }
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
      context.hub.attach(response);
      return;
    case "/api/status":
      send(response, 200, "application/json", JSON.stringify(context.hub.stats), head);
      return;
    case "/api/compare": {
      const options: CompareOptions = {};
      for (const name of COMPARE_PARAMS) {
        const value = url.searchParams.get(name);
        if (value !== null && value !== "") options[name] = value;
      }
      send(response, 200, "application/json", JSON.stringify(context.hub.compare(options)), head);
      return;
    }
    default:
      text(404, "not found");
  }
}
