import { readFileSync } from "node:fs";
import { createId } from "@streamll/core";
import {
  type CliIo,
  createProcessIo,
  nearestName,
  OUTPUT_CLOSED,
  parseCommandArgs,
  passwordFromEnv,
  plural,
  redactSecrets,
  runCommand,
  UsageError,
  wholeNumber,
} from "@streamll/core/internal";
import { version } from "../package.json";
import {
  createKafkaClient,
  type KafkaConnectionOptions,
  type KafkaPasswordSasl,
  type KafkaTlsOptions,
} from "./kafka-connection";
import { KafkaEventReader } from "./kafka-event-reader";
import type { KafkaLogger } from "./kafka-logger";
import { DEFAULT_TOPIC, isValidTopicName } from "./kafka-sink";

/** Prefix of the throwaway consumer groups; each export uses a new one and deletes it afterwards. */
export const EXPORT_GROUP_PREFIX = "streamll-export-";

export const USAGE = `Usage: streamll-kafka export --brokers <host:port>[,…] [options]

Writes the streamll events of a Kafka topic to stdout as JSONL, one event per line, for example
  streamll-kafka export --brokers localhost:9092 --from-beginning | streamll compare -

Reads every partition up to the end offsets it has when the export starts, then exits; with --follow it keeps
reading what is produced later, until --max or Ctrl-C, for example
  streamll-kafka export --brokers localhost:9092 --follow | streamll-view -
Uses a throwaway
consumer group (${EXPORT_GROUP_PREFIX}<random>) that is deleted afterwards: the offsets of your own consumer
groups are never read or committed. Messages that are not valid streamll events are skipped and counted on
stderr.

Options:
  --brokers <list>           bootstrap brokers, comma-separated host:port (required)
  --topic <name>             topic (default ${DEFAULT_TOPIC})
  --from-beginning           start at the oldest retained event (the default; accepted for clarity)
  --max <n>                  stop after n events
  --follow                   after the retained events, wait for new ones and print them too
  --ssl                      TLS, verifying the brokers' certificates against the system CAs
  --ca <file>                PEM file of the CA that signed the brokers' certificates (implies --ssl)
  --sasl-mechanism <m>       plain, scram-sha-256 or scram-sha-512 (needs --username and --password-env)
  --username <user>          SASL user name
  --password-env <VAR>       read the SASL password from this environment variable (never from argv)
  -h, --help                 show this help
  -v, --version              print the version

Exit status: 0 done, 1 Kafka error, 2 usage error, 130 interrupted.
`;

const MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;
type Mechanism = (typeof MECHANISMS)[number];

interface ExportOptions {
  connection: KafkaConnectionOptions;
  topic: string;
  max: number | undefined;
  follow: boolean;
  password: string | undefined;
}

function passwordSasl(mechanism: Mechanism, username: string, password: string): KafkaPasswordSasl {
  return { mechanism, username, password };
}

function parseExportArgs(args: readonly string[], env: CliIo["env"]): ExportOptions | "help" {
  // A secret on the command line ends up in shell history and `ps`; refuse it before anything could echo it.
  if (args.some((arg) => arg === "--password" || arg.startsWith("--password="))) {
    throw new UsageError("--password is not accepted: pass the variable that holds it with --password-env");
  }
  const { values } = parseCommandArgs({
    args: [...args],
    options: {
      brokers: { type: "string" },
      topic: { type: "string" },
      "from-beginning": { type: "boolean", default: true },
      max: { type: "string" },
      follow: { type: "boolean", default: false },
      ssl: { type: "boolean", default: false },
      ca: { type: "string" },
      "sasl-mechanism": { type: "string" },
      username: { type: "string" },
      "password-env": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (values.brokers === undefined) throw new UsageError("--brokers is required");
  const brokers = values.brokers
    .split(",")
    .map((broker) => broker.trim())
    .filter((broker) => broker !== "");
  const badBroker = brokers.find((broker) => !/^(\[[0-9a-fA-F:.]+\]|[^\s:/@]+):\d{1,5}$/.test(broker));
  if (brokers.length === 0 || badBroker !== undefined) {
    throw new UsageError("--brokers must be a comma-separated list of host:port");
  }
  const topic = values.topic ?? DEFAULT_TOPIC;
  if (!isValidTopicName(topic)) {
    throw new UsageError("--topic must be 1-249 characters of a-z A-Z 0-9 . _ -");
  }
  const connection: KafkaConnectionOptions = { brokers, clientId: "streamll-export" };
  if (values.ca !== undefined) {
    let ca: Buffer;
    try {
      ca = readFileSync(values.ca);
    } catch {
      throw new UsageError(`--ca: cannot read ${values.ca}`);
    }
    const tls: KafkaTlsOptions = { ca, rejectUnauthorized: true };
    connection.tls = tls;
  } else if (values.ssl) {
    connection.tls = true;
  }
  const mechanism = values["sasl-mechanism"];
  const username = values.username;
  const passwordEnv = values["password-env"];
  let password: string | undefined;
  if (mechanism === undefined) {
    if (username !== undefined || passwordEnv !== undefined) {
      throw new UsageError("--username and --password-env need --sasl-mechanism");
    }
  } else {
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      // The value is not repeated (someone may have typed a secret here); the nearest mechanism is named.
      const meant = nearestName(mechanism, MECHANISMS);
      throw new UsageError(
        `--sasl-mechanism must be one of ${MECHANISMS.join(", ")}${meant === undefined ? "" : `; did you mean ${meant}?`}`,
      );
    }
    if (username === undefined || username === "") {
      throw new UsageError("--sasl-mechanism needs --username");
    }
    if (passwordEnv === undefined) throw new UsageError("--sasl-mechanism needs --password-env");
    password = passwordFromEnv(passwordEnv, env);
    connection.sasl = passwordSasl(mechanism as Mechanism, username, password);
  }
  return {
    connection,
    topic,
    max: values.max === undefined ? undefined : wholeNumber("--max", values.max),
    follow: values.follow,
    password,
  };
}

async function runExport(options: ExportOptions, io: CliIo): Promise<number> {
  const secrets = [options.password];
  const logger: KafkaLogger = {
    warn: (message) => io.stderr(`streamll-kafka: ${redactSecrets(message, secrets)}\n`),
  };
  const connection: KafkaConnectionOptions = { ...options.connection, logger, logLevel: "nothing" };
  const groupId = `${EXPORT_GROUP_PREFIX}${createId()}`;
  const admin = createKafkaClient(connection);
  const adminClient = admin.kafka.admin();
  let reader: KafkaEventReader | undefined;
  let exported = 0;
  let status = 0;
  const onAbort = () => void reader?.stop();
  io.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await adminClient.connect();
    // Listing does not create the topic, even on brokers with auto.create.topics.enable.
    const topics = await adminClient.listTopics();
    if (!topics.includes(options.topic)) {
      io.stderr(`streamll-kafka: topic ${options.topic} does not exist\n`);
      return 1;
    }
    if (io.signal?.aborted) return io.signal.reason === OUTPUT_CLOSED ? 0 : 130;
    reader = new KafkaEventReader({
      ...connection,
      groupId,
      topic: options.topic,
      // An export that started at the end would stop at once with nothing: it always reads what is retained.
      fromBeginning: true,
      stopAtEnd: !options.follow,
    });
    const active = reader;
    await active.run(async (record) => {
      if (io.signal?.aborted) {
        await active.stop();
        return;
      }
      // Re-serialised from the validated event: the sink's own JSON comes out byte for byte, fields a
      // later schema minor version adds are kept.
      await io.stdout(`${JSON.stringify(record.event)}\n`);
      exported += 1;
      if (options.max !== undefined && exported >= options.max) await active.stop();
    });
    const malformed = active.getStats().malformed;
    const skipped = malformed === 0 ? "" : `, skipped ${malformed} malformed ${plural(malformed, "message")}`;
    io.stderr(
      `streamll-kafka: exported ${exported} ${plural(exported, "event")} from ${options.topic}${skipped}\n`,
    );
    if (io.signal?.aborted) status = io.signal.reason === OUTPUT_CLOSED ? 0 : 130;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`streamll-kafka: ${redactSecrets(admin.scrubber.scrub(message), secrets)}\n`);
    status = 1;
  } finally {
    io.signal?.removeEventListener("abort", onAbort);
    await reader?.close().catch(() => undefined);
    if (reader !== undefined) await deleteGroup(adminClient, groupId, io, secrets);
    await adminClient.disconnect().catch(() => undefined);
    admin.close();
  }
  return status;
}

/** Deletes the throwaway group; the coordinator may still see the member leaving, so a few tries. */
async function deleteGroup(
  adminClient: ReturnType<ReturnType<typeof createKafkaClient>["kafka"]["admin"]>,
  groupId: string,
  io: CliIo,
  secrets: readonly (string | undefined)[],
): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await adminClient.deleteGroups([groupId]);
      return;
    } catch (error) {
      // A group that never joined (empty topic) has nothing to delete.
      const text = error instanceof Error ? `${error.message} ${JSON.stringify(error)}` : String(error);
      if (/GROUP_ID_NOT_FOUND|does not exist/i.test(text)) return;
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
    }
  }
  const message = lastError instanceof Error ? lastError.message : String(lastError);
  io.stderr(
    `streamll-kafka: warning: could not delete the consumer group ${groupId}: ${redactSecrets(message, secrets)}\n`,
  );
}

/**
 * Runs `streamll-kafka` with `argv` (the arguments after the script name) and resolves to the exit status.
 * Never calls `process.exit` and never throws, so it can run inside tests.
 */
export function main(argv: readonly string[], io: CliIo = createProcessIo()): Promise<number> {
  return runCommand(
    {
      tool: "streamll-kafka",
      command: "export",
      version,
      usage: USAGE,
      parse: parseExportArgs,
      run: runExport,
    },
    argv,
    io,
  );
}
