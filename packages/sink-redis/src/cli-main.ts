import { decodeEvent } from "@streamll/core";
import {
  type CliIo,
  createProcessIo,
  OUTPUT_CLOSED,
  parseCommandArgs,
  passwordFromEnv,
  plural,
  redactSecrets,
  runCommand,
  shownNumber,
  UsageError,
  wholeNumber,
} from "@streamll/core/internal";
import { version } from "../package.json";
import { RedisConnection } from "./redis-connection";
import { safeRedisMessage, toRedisSinkError } from "./redis-errors";
import { EVENT_FIELD } from "./redis-sink";
import { DEFAULT_STREAM } from "./stream-key";

/** Entries fetched per `XRANGE` call. */
const PAGE_SIZE = 500;
/** Malformed entries reported one by one before only the total is given. */
const REPORTED_MALFORMED = 10;

export const USAGE = `Usage: streamll-redis export [options]

Writes the streamll events of a Redis stream to stdout as JSONL, one event per line, for example
  streamll-redis export --url redis://127.0.0.1:6379 | streamll compare -

The stream is read with XRANGE, page by page, without a consumer group: nothing is acknowledged, claimed or
removed. The range ends at the stream's last entry when the export starts; entries added later are not read,
unless --follow is given: then the export keeps waiting for new entries (XREAD BLOCK) and prints them as they
arrive, until --max, Ctrl-C or the reader of stdout goes away, for example
  streamll-redis export --follow | streamll-view -
Entries that are not valid streamll events are skipped and counted on stderr.

Options:
  --url <url>               redis://[user[:password]@]host[:port][/db] or rediss://… for TLS
                            (default redis://127.0.0.1:6379)
  --password-env <VAR>      read the password from this environment variable (overrides the URL's)
  --stream <key>            stream key (default ${DEFAULT_STREAM})
  --from <id>               first entry id: -, 0, <ms> or <ms>-<seq> (default -, the oldest)
  --to <id>                 last entry id: +, <ms> or <ms>-<seq> (default +, the newest at start)
  --max <n>                 stop after n events
  --follow                  after the entries there are, wait for new ones and print them too (not with --to)
  --connect-timeout-ms <n>  give up connecting after this long (default 5000)
  -h, --help                show this help
  -v, --version             print the version

Exit status: 0 done, 1 Redis error, 2 usage error, 130 interrupted.
`;

interface ExportOptions {
  url: string | undefined;
  password: string | undefined;
  stream: string;
  from: string;
  to: string;
  max: number | undefined;
  follow: boolean;
  connectTimeoutMs: number | undefined;
}

const STREAM_ID = /^\d+(-\d+)?$/;

function parseExportArgs(args: readonly string[], env: CliIo["env"]): ExportOptions | "help" {
  const { values } = parseCommandArgs({
    args: [...args],
    options: {
      url: { type: "string" },
      "password-env": { type: "string" },
      stream: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      max: { type: "string" },
      follow: { type: "boolean", default: false },
      "connect-timeout-ms": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const from = values.from ?? "-";
  if (from !== "-" && !STREAM_ID.test(from)) {
    throw new UsageError(`--from must be -, 0, <ms> or <ms>-<seq>, got ${shownNumber(from)}`);
  }
  const to = values.to ?? "+";
  if (to !== "+" && !STREAM_ID.test(to)) {
    throw new UsageError(`--to must be +, <ms> or <ms>-<seq>, got ${shownNumber(to)}`);
  }
  if (values.follow && values.to !== undefined) {
    throw new UsageError("--follow reads on past the newest entry: it cannot be combined with --to");
  }
  if (values.stream === "") throw new UsageError("--stream must not be empty");
  const passwordEnv = values["password-env"];
  const password = passwordEnv === undefined ? undefined : passwordFromEnv(passwordEnv, env);
  return {
    url: values.url,
    password,
    stream: values.stream ?? DEFAULT_STREAM,
    from,
    to,
    max: values.max === undefined ? undefined : wholeNumber("--max", values.max),
    follow: values.follow,
    connectTimeoutMs:
      values["connect-timeout-ms"] === undefined
        ? undefined
        : wholeNumber("--connect-timeout-ms", values["connect-timeout-ms"]),
  };
}

/** The id right after `id` (`<ms>-<seq+1>`), so the next page starts behind the last entry read. */
function nextId(id: string): string {
  const [ms = "0", seq = "0"] = id.split("-");
  return `${ms}-${(BigInt(seq) + 1n).toString()}`;
}

const MAX_SEQ = 18446744073709551615n;

/**
 * The id right before `--from` (XREAD returns entries after the id it is given, XRANGE from it): `-` and `0`
 * become `0-0`, `<ms>` means `<ms>-0`.
 */
function idBefore(from: string): string {
  if (from === "-") return "0-0";
  const [ms = "0", seq = "0"] = from.split("-");
  const s = BigInt(seq);
  if (s > 0n) return `${ms}-${(s - 1n).toString()}`;
  const m = BigInt(ms);
  return m === 0n ? "0-0" : `${(m - 1n).toString()}-${MAX_SEQ.toString()}`;
}

/**
 * The line written for an entry: its stored JSON unchanged when it already is one line, else the validated
 * event re-serialised (JSONL must not contain line breaks or a byte order mark).
 */
function lineOf(raw: string, event: unknown): string {
  if (/[\r\n\u2028\u2029]/.test(raw) || raw.charCodeAt(0) === 0xfeff) return JSON.stringify(event);
  return raw.trim();
}

type RawRange = [id: string, fields: string[]][];
type RawRead = [stream: string, entries: RawRange][] | null;

/** How long one XREAD of --follow blocks: short enough that Ctrl-C is noticed soon, below the socket timeout. */
const FOLLOW_BLOCK_MS = 1_000;

async function runExport(options: ExportOptions, io: CliIo): Promise<number> {
  const connection = new RedisConnection(
    {
      ...(options.url === undefined ? {} : { url: options.url }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    },
    { connectionName: "streamll-export" },
  );
  const secrets = () => [...connection.secrets(), options.password];
  let exported = 0;
  let malformed = 0;
  const limitReached = () => options.max !== undefined && exported >= options.max;
  const done = () => io.signal?.aborted === true || limitReached();
  /** Prints one entry (or counts it as malformed). */
  const write = async (id: string, fields: string[]): Promise<void> => {
    let raw: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === EVENT_FIELD) raw = fields[i + 1];
    }
    const decoded = raw === undefined ? undefined : decodeEvent(raw);
    if (raw === undefined || decoded === undefined || !decoded.ok) {
      malformed += 1;
      if (malformed <= REPORTED_MALFORMED) {
        const reason =
          decoded === undefined || decoded.ok
            ? `no "${EVENT_FIELD}" field`
            : decoded.error.message.slice(0, 300);
        io.stderr(`streamll-redis: skipped entry ${id}: ${reason}\n`);
      }
      return;
    }
    await io.stdout(`${lineOf(raw, decoded.event)}\n`);
    exported += 1;
  };
  try {
    await connection.ready(io.signal);
    const client = connection.client;
    if (options.follow) {
      // XREAD from the id before --from: what the stream holds now, then every entry added later, in order.
      // A Ctrl-C is noticed between two reads, so each read blocks only briefly.
      const blockMs = Math.max(1, Math.min(FOLLOW_BLOCK_MS, Math.floor(connection.commandTimeoutMs / 2)));
      let last = idBefore(options.from);
      while (!done()) {
        const read = (await client.xread(
          "COUNT",
          PAGE_SIZE,
          "BLOCK",
          blockMs,
          "STREAMS",
          options.stream,
          last,
        )) as RawRead;
        for (const [id, fields] of read?.[0]?.[1] ?? []) {
          if (done()) break;
          await write(id, fields);
          last = id;
        }
      }
    } else {
      // "+" is pinned to the last entry now, so an export of a stream that is being written to ends.
      let end = options.to;
      if (end === "+") {
        const newest = (await client.xrevrange(options.stream, "+", "-", "COUNT", 1)) as RawRange;
        end = newest[0]?.[0] ?? "";
      }
      let start = options.from;
      while (end !== "" && !done()) {
        const page = (await client.xrange(options.stream, start, end, "COUNT", PAGE_SIZE)) as RawRange;
        for (const [id, fields] of page) {
          if (done()) break;
          await write(id, fields);
        }
        const lastId = page[page.length - 1]?.[0];
        if (page.length < PAGE_SIZE || lastId === undefined || lastId === end) break;
        start = nextId(lastId);
      }
    }
  } catch (error) {
    if (io.signal?.aborted) {
      // Interrupted while connecting: the failure is the abort itself, not Redis.
      await connection.close();
      return io.signal.reason === OUTPUT_CLOSED ? 0 : 130;
    }
    const wrapped = toRedisSinkError(error, "Redis export failed", connection.secrets());
    io.stderr(`streamll-redis: ${redactSecrets(wrapped.message, secrets())}\n`);
    await connection.close();
    return 1;
  }
  await connection.close();
  const skipped = malformed === 0 ? "" : `, skipped ${malformed} malformed ${plural(malformed, "entry")}`;
  io.stderr(
    `streamll-redis: exported ${exported} ${plural(exported, "event")} from ${options.stream}${skipped}\n`,
  );
  if (io.signal?.aborted) return io.signal.reason === OUTPUT_CLOSED ? 0 : 130;
  return 0;
}

/**
 * Runs `streamll-redis` with `argv` (the arguments after the script name) and resolves to the exit status.
 * Never calls `process.exit` and never throws, so it can run inside tests.
 */
export function main(argv: readonly string[], io: CliIo = createProcessIo()): Promise<number> {
  return runCommand(
    {
      tool: "streamll-redis",
      command: "export",
      version,
      usage: USAGE,
      parse: parseExportArgs,
      run: runExport,
      describeError: (error, options) => safeRedisMessage(error, [options.password ?? ""]),
    },
    argv,
    io,
  );
}
