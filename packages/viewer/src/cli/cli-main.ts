import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { DEFAULT_JSONL_PATH } from "@streamll/core";
import {
  type CliIo,
  createProcessIo,
  parseCommandArgs,
  runCommand,
  UsageError,
  wholeNumber,
} from "@streamll/core/internal";
import { version } from "../../package.json";
import type { PriceTable } from "../protocol";
import { DEFAULT_LIMITS } from "../server/execution-store";
import { resolveViewerOptions, type ViewerOptions } from "../server/viewer-options";
import { ViewerServer } from "../server/viewer-server";
import { followFile } from "../sources/follow-file";
import { type LineSink, readLines } from "../sources/read-stream";

export const USAGE = `Usage: streamll-view [<events.jsonl> | -] [options]

Shows streamll events live in the browser: executions, span waterfalls, streamed tokens, errors, and the
version comparison of streamll compare. Reads a JSON Lines file, following it as it grows and across rotation
(default ${DEFAULT_JSONL_PATH}), or stdin with "-", for example
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
  try {
    return JSON.parse(text) as PriceTable;
  } catch {
    throw new UsageError(`--prices: ${file} is not JSON`);
  }
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
  return { source: positionals[0] ?? DEFAULT_JSONL_PATH, viewer, history: !values["no-history"] };
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
    io.stderr(`streamll-view: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  const sink: LineSink = {
    line: (text) => server.ingest(text),
    // A line too long to take, or cut off by a rotation: counted with the invalid lines.
    skipped: () => server.ingest(""),
  };
  let stop: () => Promise<void>;
  if (options.source === "-") {
    server.setSource({ kind: "stdin", label: "stdin", state: "live" });
    const reading = readLines(stdin, sink).then(
      () => {
        server.setSource({ kind: "stdin", label: "stdin", state: "ended" });
        io.stderr(
          `streamll-view: stdin ended after ${server.stats.received} lines; the page stays up until Ctrl-C\n`,
        );
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        server.setSource({ kind: "stdin", label: "stdin", state: "ended", error: message });
      },
    );
    stop = async () => {
      stdin.destroy();
      await reading;
    };
  } else {
    const label = options.source;
    server.setSource({ kind: "file", label, state: "live" });
    const follower = followFile(options.source, sink, {
      history: options.history,
      onState: (state) => {
        if (state.kind === "reading") server.setSource({ kind: "file", label, state: "live" });
        else {
          const error = state.kind === "waiting" ? state.reason : state.error;
          server.setSource({ kind: "file", label, state: "live", error });
          io.stderr(`streamll-view: ${error}\n`);
        }
      },
    });
    stop = () => follower.close();
  }
  await io.stdout(`streamll-view: ${server.url}\n`);
  io.stderr(
    `streamll-view: reading ${options.source === "-" ? "stdin" : options.source}; open the URL above (Ctrl-C to stop)\n`,
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
