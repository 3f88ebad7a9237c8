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
  UsageError,
  wholeNumber,
} from "@streamll/core/internal";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { connect } from "amqplib";
import { version } from "../package.json";
import { CLOSE_TIMEOUT_MS, settleWithin } from "./connection-manager";
import {
  type RabbitMQConnectionOptions,
  resolveConnection,
  validateConnectionOptions,
} from "./connection-options";
import { DEFAULT_EXCHANGE } from "./rabbitmq-sink";

/** Written to stderr once the temporary queue is bound: events published from then on are printed. */
export const LISTENING_PREFIX = "streamll-rabbitmq: listening";

/** Messages the broker sends ahead of the one being written. */
const PREFETCH = 100;
/** Malformed messages reported one by one before only the total is given. */
const REPORTED_MALFORMED = 10;

export const USAGE = `Usage: streamll-rabbitmq tail [options]

Prints the streamll events published to a RabbitMQ exchange as JSONL on stdout, one event per line, for example
  streamll-rabbitmq tail --url amqp://localhost --max 1000 > events.jsonl && streamll compare events.jsonl
  streamll-rabbitmq tail --follow | streamll-view -

A live tail, not an export: RabbitMQ queues hand each message out once, so reading your durable queues would
take events away from their consumers. The tail declares its own temporary queue (exclusive, auto-delete,
server-named) bound to the exchange and prints what is published from then on; events published before it
started, or to exchanges it is not bound to, are not seen. The queue disappears when the tail exits.
Messages that are not valid streamll events are skipped and counted on stderr.

Options:
  --url <url>               amqp://[user[:password]@]host[:port][/vhost] or amqps://… for TLS
                            (default amqp://localhost:5672, user guest)
  --password-env <VAR>      read the password from this environment variable (overrides the URL's)
  --exchange <name>         topic exchange the sink publishes to (default ${DEFAULT_EXCHANGE})
  --binding <key>           binding key, repeatable (default '#': every event; the sink's routing keys are
                            streamll.<module_name>.<event_type>)
  --max <n>                 exit after n events
  --idle-ms <ms>            exit after this long without a message, counted from the start too (default 2000;
                            0 waits until --max or Ctrl-C)
  --follow                  never exit for being idle: print events until --max, Ctrl-C or the reader of
                            stdout goes away (the same as --idle-ms 0)
  --connect-timeout-ms <n>  give up connecting after this long (default 10000)
  -h, --help                show this help
  -v, --version             print the version

Exit status: 0 done (--max reached, idle, or the reader of stdout went away), 1 RabbitMQ error, 2 usage
error, 130 interrupted (Ctrl-C).
`;

interface TailOptions {
  connection: RabbitMQConnectionOptions;
  exchange: string;
  bindings: string[];
  max: number | undefined;
  idleMs: number;
  password: string | undefined;
}

function parseTailArgs(args: readonly string[], env: CliIo["env"]): TailOptions | "help" {
  const { values } = parseCommandArgs({
    args: [...args],
    options: {
      url: { type: "string" },
      "password-env": { type: "string" },
      exchange: { type: "string" },
      binding: { type: "string", multiple: true },
      max: { type: "string" },
      "idle-ms": { type: "string" },
      follow: { type: "boolean", default: false },
      "connect-timeout-ms": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (values.follow && values["idle-ms"] !== undefined) {
    throw new UsageError("--follow never exits for being idle: it cannot be combined with --idle-ms");
  }
  const exchange = values.exchange ?? DEFAULT_EXCHANGE;
  if (exchange === "" || Buffer.byteLength(exchange, "utf8") > 255) {
    throw new UsageError("--exchange must be 1-255 bytes");
  }
  const bindings = values.binding ?? ["#"];
  if (bindings.some((key) => Buffer.byteLength(key, "utf8") > 255)) {
    throw new UsageError("--binding keys must be at most 255 bytes");
  }
  const connection: RabbitMQConnectionOptions = { connectionName: "streamll-rabbitmq tail" };
  if (values.url !== undefined) connection.url = values.url;
  const passwordEnv = values["password-env"];
  const password = passwordEnv === undefined ? undefined : passwordFromEnv(passwordEnv, env);
  if (password !== undefined) connection.password = password;
  if (values["connect-timeout-ms"] !== undefined) {
    connection.connectTimeoutMs = wholeNumber("--connect-timeout-ms", values["connect-timeout-ms"], 1);
  }
  // URL problems (scheme, percent-encoding) are reported without the URL, which may hold a password.
  validateConnectionOptions(connection);
  return {
    connection,
    exchange,
    bindings,
    max: values.max === undefined ? undefined : wholeNumber("--max", values.max, 1),
    idleMs: values.follow
      ? 0
      : values["idle-ms"] === undefined
        ? 2_000
        : wholeNumber("--idle-ms", values["idle-ms"], 0),
    password,
  };
}

/**
 * The line written for a message: its body unchanged when it already is one line of JSON, else the validated
 * event re-serialised (JSONL must not contain line breaks or a byte order mark).
 */
function lineOf(raw: string, event: unknown): string {
  if (/[\r\n\u2028\u2029]/.test(raw) || raw.charCodeAt(0) === 0xfeff) return JSON.stringify(event);
  return raw.trim();
}

/** Why the tail ended. */
type Ending = "max" | "idle" | "signal" | { error: unknown };

async function runTail(options: TailOptions, io: CliIo): Promise<number> {
  const resolved = resolveConnection(options.connection);
  const secrets = [...resolved.secrets, options.password];
  let model: ChannelModel | undefined;
  let channel: Channel | undefined;
  let printed = 0;
  let malformed = 0;
  try {
    model = await connect(resolved.target, resolved.socketOptions);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(
      `streamll-rabbitmq: cannot connect to ${resolved.description}: ${redactSecrets(message, secrets)}\n`,
    );
    return 1;
  }

  const inbox: ConsumeMessage[] = [];
  let ending: Ending | undefined;
  let wake: (() => void) | undefined;
  const end = (why: Ending): void => {
    ending ??= why;
    wake?.();
  };
  // Without listeners an `error` event would crash the process; the tail ends and reports it instead.
  model.on("error", (error: unknown) => end({ error }));
  model.on("close", (error?: unknown) =>
    end({ error: error ?? new Error("connection closed by the broker") }),
  );
  const onAbort = () => end("signal");
  io.signal?.addEventListener("abort", onAbort, { once: true });
  if (io.signal?.aborted) end("signal");

  try {
    channel = await model.createChannel();
    channel.on("error", (error: unknown) => end({ error }));
    channel.on("close", () => end({ error: new Error("channel closed by the broker") }));
    await channel.assertExchange(options.exchange, "topic", { durable: true });
    // Server-named, exclusive and auto-delete: nobody else can consume it and it vanishes with the connection.
    // Classic, because a vhost whose default type is quorum cannot hold exclusive queues.
    const { queue } = await channel.assertQueue("", {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { "x-queue-type": "classic" },
    });
    for (const key of options.bindings) await channel.bindQueue(queue, options.exchange, key);
    await channel.prefetch(PREFETCH);
    await channel.consume(
      queue,
      (message) => {
        if (message === null) {
          end({ error: new Error("the broker cancelled the consumer") });
          return;
        }
        inbox.push(message);
        wake?.();
      },
      { noAck: false },
    );
    const limits = [
      options.max === undefined ? undefined : `after ${options.max} ${plural(options.max, "event")}`,
      options.idleMs === 0 ? undefined : `after ${options.idleMs} ms without one`,
    ].filter((part) => part !== undefined);
    io.stderr(
      `${LISTENING_PREFIX} on ${resolved.description} exchange ${options.exchange} (${options.bindings.join(", ")}); exits ${limits.length === 0 ? "on Ctrl-C" : limits.join(" or ")}\n`,
    );

    const current = channel;
    while (ending === undefined) {
      const message = inbox.shift();
      if (message === undefined) {
        await new Promise<void>((resolve) => {
          const timer = options.idleMs > 0 ? setTimeout(() => end("idle"), options.idleMs) : undefined;
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          };
        });
        continue;
      }
      const decoded = decodeEvent(message.content);
      if (!decoded.ok) {
        malformed += 1;
        if (malformed <= REPORTED_MALFORMED) {
          io.stderr(
            `streamll-rabbitmq: skipped a message (routing key ${message.fields.routingKey}): ${decoded.error.message.slice(0, 300)}\n`,
          );
        }
      } else {
        await io.stdout(`${lineOf(message.content.toString("utf8"), decoded.event)}\n`);
        printed += 1;
      }
      // The queue is this tail's own: acknowledging only keeps the broker sending (prefetch).
      current.ack(message);
      if (options.max !== undefined && printed >= options.max) end("max");
    }
  } catch (error) {
    end({ error });
  } finally {
    io.signal?.removeEventListener("abort", onAbort);
  }

  // Closing the connection deletes the exclusive queue with whatever it still holds.
  const failure = typeof ending === "object" ? ending.error : undefined;
  model.removeAllListeners("close");
  model.on("close", () => undefined);
  channel?.removeAllListeners("close");
  channel?.on("close", () => undefined);
  await settleWithin(model.close(), CLOSE_TIMEOUT_MS);
  const skipped = malformed === 0 ? "" : `, skipped ${malformed} malformed ${plural(malformed, "message")}`;
  io.stderr(`streamll-rabbitmq: printed ${printed} ${plural(printed, "event")}${skipped}\n`);
  if (failure !== undefined) {
    const message = failure instanceof Error ? failure.message : String(failure);
    io.stderr(`streamll-rabbitmq: ${redactSecrets(message, secrets)}\n`);
    return 1;
  }
  if (ending === "signal" && io.signal?.reason !== OUTPUT_CLOSED) return 130;
  return 0;
}

/**
 * Runs `streamll-rabbitmq` with `argv` (the arguments after the script name) and resolves to the exit
 * status. Never calls `process.exit` and never throws, so it can run inside tests.
 */
export function main(argv: readonly string[], io: CliIo = createProcessIo()): Promise<number> {
  return runCommand(
    { tool: "streamll-rabbitmq", command: "tail", version, usage: USAGE, parse: parseTailArgs, run: runTail },
    argv,
    io,
  );
}
