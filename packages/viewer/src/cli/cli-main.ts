import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { DEFAULT_JSONL_PATH } from "@streamll/core";
import {
  type CliIo,
  createProcessIo,
  parseCommandArgs,
  redactSecrets,
  runCommand,
  UsageError,
  wholeNumber,
} from "@streamll/core/internal";
import { version } from "../../package.json";
import type { PriceTable } from "../protocol";
import { DEFAULT_LIMITS } from "../server/execution-store";
import { isHostShaped, resolveViewerOptions, type ViewerOptions } from "../server/viewer-options";
import { ViewerServer } from "../server/viewer-server";
import { followFile } from "../sources/follow-file";
import { openPipe, sourceMode } from "../sources/pipe-source";
import { type LineSink, readLines } from "../sources/read-stream";

export const USAGE = `Usage: streamll-view [<events.jsonl> | -] [options]

Shows streamll events live in the browser: executions, span waterfalls, streamed tokens, errors, and the
version comparison of streamll compare. Reads a JSON Lines file, following it as it grows and across rotation
(default ${DEFAULT_JSONL_PATH}; a FIFO or pipe is read once, like stdin), or stdin with "-", for example
  streamll-view .streamll/events.jsonl
  streamll-kafka export --brokers localhost:9092 --follow | streamll-view -
  streamll-redis export --follow | streamll-view -
  streamll-rabbitmq tail --follow | streamll-view -

Prints the page's URL, which carries a token made for this run (the page and its event stream refuse
requests without it), and runs until Ctrl-C. Keeps the last executions in memory (see the limits below).

Options:
  --port <n>                       port (default: a free port picked by the system)
  --host <address>                 interface to listen on (default 127.0.0.1, this machine only); any other
                                   makes the page reachable from the network and prints a warning
  --max-executions <n>             executions kept, the oldest dropped first (default ${DEFAULT_LIMITS.maxExecutions})
  --max-bytes <n>                  event JSON kept, in bytes (default ${DEFAULT_LIMITS.maxBytes}, 64 MiB)
  --max-events-per-execution <n>   events kept per execution; tokens past it are dropped and counted
                                   (default ${DEFAULT_LIMITS.maxEventsPerExecution})
  --prices <file>                  JSON price table for the cost column:
                                   {"<model>": {"inputPerMillion": 0.15, "outputPerMillion": 0.6}, …}
  --no-history                     do not read the rotated files (events.1.jsonl …) before the file
  -h, --help                       show this help
  -v, --version                    print the version

Exit status: 130 after Ctrl-C, 1 the viewer could not start, 2 usage error.
`;

interface ViewOptions {
  readonly source: string;
  /** `stream`: the source is a FIFO or pipe, read once in order like stdin, not followed. */
  readonly mode: "follow" | "stream";
  readonly viewer: ViewerOptions;
  readonly history: boolean;
  readonly password?: undefined;
}

function readPrices(file: string): PriceTable {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new UsageError(`--prices: cannot read ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--prices: ${file} is not JSON`);
  }
  // Said here in the table's own terms: the schema's generic wording ("an object of an object values") is
  // no help for a hand-written file. The fields of each price are checked by the schema afterwards.
  const isObject = (value: unknown) => typeof value === "object" && value !== null && !Array.isArray(value);
  if (!isObject(parsed) || !Object.values(parsed as object).every(isObject)) {
    throw new UsageError(`--prices: ${file} must hold ${PRICES_SHAPE}`);
  }
  return parsed as PriceTable;
}

const PRICES_SHAPE = '{"<model>": {"inputPerMillion": <number>, "outputPerMillion": <number>}, …}';

/** `1 line`, `2 lines`. */
function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** `scheme://`: a URL, not a file path (a path that starts so would be `./redis://…`). */
const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** How to read from a broker whose URL was given as the source, as the viewer guide's "From a broker" says. */
const BROKER_EXPORTS: Readonly<Record<string, string>> = {
  redis: "streamll-redis export --url <url> --follow | streamll-view -",
  rediss: "streamll-redis export --url <url> --follow | streamll-view -",
  kafka: "streamll-kafka export --brokers <host:port> --follow | streamll-view -",
  amqp: "streamll-rabbitmq tail --url <url> --follow | streamll-view -",
  amqps: "streamll-rabbitmq tail --url <url> --follow | streamll-view -",
};

/**
 * The file to follow. A URL is refused: it is no file, and followed as one it would wait forever for a file of
 * that name, printing it (password included) to the terminal and the page. Only the scheme is ever shown.
 * `file://` URLs are taken as the path they name.
 */
function sourceArgument(given: string): string {
  const scheme = URL_SCHEME.exec(given)?.[1]?.toLowerCase();
  if (scheme === undefined) return given;
  if (scheme === "file") {
    try {
      return fileURLToPath(given);
    } catch {
      throw new UsageError("the file: URL names no local file; give the file's path");
    }
  }
  // Own properties only: `constructor://…` must not find Object's members.
  const how =
    (Object.hasOwn(BROKER_EXPORTS, scheme) ? BROKER_EXPORTS[scheme] : undefined) ??
    "streamll-redis export --follow, streamll-kafka export --follow or streamll-rabbitmq tail --follow, piped into streamll-view -";
  throw new UsageError(
    `a ${scheme}:// URL is not a source: streamll-view reads a JSONL file, or stdin with "-". To read from a ` +
      `broker, pipe its export into stdin: ${how} (see "From a broker" in the viewer guide)`,
  );
}

/**
 * Why the server could not start. The `--host` value is never repeated: a token can look like a host name
 * (`sk-live-…` does), and the user knows what they typed.
 */
function startError(error: unknown, host: string | undefined): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (host !== undefined && (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_FAIL")) {
    return "--host does not resolve to an address; give an interface of this machine, e.g. 127.0.0.1 or 0.0.0.0";
  }
  if (host !== undefined && code === "EADDRNOTAVAIL") return "--host is not an address of this machine";
  const message = error instanceof Error ? error.message : String(error);
  return redactSecrets(message, host === undefined ? [] : [host]);
}

const VIEW_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  "max-executions": { type: "string" },
  "max-bytes": { type: "string" },
  "max-events-per-execution": { type: "string" },
  prices: { type: "string" },
  "no-history": { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function parseViewArgs(args: readonly string[]): ViewOptions | "help" {
  const { values, positionals } = parseCommandArgs({
    args: [...args],
    allowPositionals: true,
    options: VIEW_OPTIONS,
  });
  if (values.help) return "help";
  if (positionals.length > 1) throw new UsageError("give one file (or - for stdin)");
  const viewer: ViewerOptions = {};
  if (values.port !== undefined) {
    const port = wholeNumber("--port", values.port, 0);
    if (port > 65_535) throw new UsageError(`--port must be at most 65535, got "${values.port}"`);
    viewer.port = port;
  }
  if (values.host !== undefined) {
    if (values.host.trim() === "") throw new UsageError("--host must not be empty");
    if (!isHostShaped(values.host)) {
      throw new UsageError("--host must be a host name or IP address (the value given is neither)");
    }
    viewer.host = values.host;
  }
  if (values["max-executions"] !== undefined) {
    viewer.maxExecutions = wholeNumber("--max-executions", values["max-executions"]);
  }
  if (values["max-bytes"] !== undefined) viewer.maxBytes = wholeNumber("--max-bytes", values["max-bytes"]);
  if (values["max-events-per-execution"] !== undefined) {
    viewer.maxEventsPerExecution = wholeNumber(
      "--max-events-per-execution",
      values["max-events-per-execution"],
    );
  }
  if (values.prices !== undefined) {
    viewer.prices = readPrices(values.prices);
    try {
      resolveViewerOptions({ prices: viewer.prices }, "viewer");
    } catch (error) {
      throw new UsageError(`--prices: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const source = positionals[0] === undefined ? DEFAULT_JSONL_PATH : sourceArgument(positionals[0]);
  let mode: ViewOptions["mode"] = "follow";
  if (source !== "-") {
    try {
      mode = sourceMode(source);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }
  return { source, mode, viewer, history: !values["no-history"] };
}

async function runView(options: ViewOptions, io: CliIo, stdin: Readable): Promise<number> {
  let server: ViewerServer;
  try {
    server = await ViewerServer.start({
      ...options.viewer,
      keepAlive: true,
      onWarning: (message) => io.stderr(`streamll-view: ${message}\n`),
    });
  } catch (error) {
    io.stderr(`streamll-view: cannot start: ${startError(error, options.viewer.host)}\n`);
    return 1;
  }
  const sink: LineSink = {
    line: (text) => server.ingest(text),
    // A line too long to take, or cut off by a rotation: counted with the invalid lines.
    skipped: () => server.ingest(""),
  };
  /** Reads `stream` once, in order, until it ends (stdin, a FIFO or a pipe). */
  const readStream = (stream: Readable, kind: "stdin" | "file", label: string) => {
    server.setSource({ kind, label, state: "live" });
    const reading = readLines(stream, sink).then(
      () => {
        server.setSource({ kind, label, state: "ended" });
        io.stderr(
          `streamll-view: ${label} ended after ${plural(server.stats.received, "line")}; the page stays up until Ctrl-C\n`,
        );
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        server.setSource({ kind, label, state: "ended", error: message });
      },
    );
    return async () => {
      stream.destroy();
      await reading;
    };
  };
  let stop: () => Promise<void>;
  if (options.source === "-") {
    stop = readStream(stdin, "stdin", "stdin");
  } else if (options.mode === "stream") {
    let pipe: Readable;
    try {
      pipe = openPipe(options.source);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      io.stderr(`streamll-view: cannot read: ${redactSecrets(message, [])}\n`);
      await server.close();
      return 1;
    }
    stop = readStream(pipe, "file", redactSecrets(options.source, []));
  } else {
    // A path holds no credentials, but a label must never show `user:pass@`, whatever it was given.
    const label = redactSecrets(options.source, []);
    server.setSource({ kind: "file", label, state: "live" });
    const follower = followFile(options.source, sink, {
      history: options.history,
      onState: (state) => {
        if (state.kind === "reading") server.setSource({ kind: "file", label, state: "live" });
        else {
          const error = state.kind === "waiting" ? state.reason : state.error;
          server.setSource({ kind: "file", label, state: "live", error });
          io.stderr(`streamll-view: ${redactSecrets(error, [])}\n`);
        }
      },
    });
    stop = () => follower.close();
  }
  await io.stdout(`streamll-view: ${server.url}\n`);
  io.stderr(
    `streamll-view: reading ${options.source === "-" ? "stdin" : redactSecrets(options.source, [])}; open the URL above (Ctrl-C to stop)\n`,
  );
  await new Promise<void>((resolve) => {
    if (io.signal === undefined || io.signal.aborted) {
      resolve();
      return;
    }
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await stop();
  await server.close();
  return 130;
}

/**
 * Runs `streamll-view` with `argv` (the arguments after the script name) and resolves to the exit status once
 * `io.signal` aborts (Ctrl-C). Never calls `process.exit` and never throws, so it can run inside tests.
 */
export function main(
  argv: readonly string[],
  io: CliIo = createProcessIo(),
  stdin: Readable = process.stdin,
): Promise<number> {
  return runCommand(
    {
      tool: "streamll-view",
      version,
      usage: USAGE,
      parse: parseViewArgs,
      run: (options, commandIo) => runView(options, commandIo, stdin),
    },
    argv,
    io,
  );
}
