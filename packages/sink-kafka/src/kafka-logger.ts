import { type LogEntry, type logCreator, logLevel } from "kafkajs";

/**
 * Where the Kafka sink and reader report their own trouble (connection loss, failed sends, kafkajs's log
 * lines). Compatible with the core's `StreamllLogger` and `DeliveryLogger`. Never receives a secret.
 */
export interface KafkaLogger {
  warn(message: string, context?: object): void;
  /** Optional; `warn` is used when it is missing. */
  error?(message: string, context?: object): void;
}

/** Which kafkajs log lines are forwarded to the {@link KafkaLogger}. Default `error`. */
export type KafkaLogLevel = "nothing" | "error" | "warn" | "info";

/** Default logger: one line on stderr per message, tagged so it is clearly streamll's. */
export const consoleKafkaLogger: KafkaLogger = Object.freeze({
  warn(message: string, context?: object) {
    if (context === undefined) console.warn(`[streamll:kafka] ${message}`);
    else console.warn(`[streamll:kafka] ${message}`, context);
  },
});

const REDACTED = "[redacted]";

/**
 * Patterns that look like credentials whatever their origin: Event Hubs connection-string keys, SigV4
 * presigned-URL signatures and session tokens, JWTs, and `password=`-style pairs.
 */
const SECRET_PATTERNS: readonly RegExp[] = [
  /(SharedAccessKey=)[^;\s"']+/gi,
  /(SharedAccessSignature\s+)[^\s"']+/gi,
  /(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s"']+/gi,
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /((?:password|passwd|secret|token|api[_-]?secret)["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
];

/**
 * Removes secrets from text: every value registered with `add` (passwords, current and recent tokens) and
 * anything matching {@link SECRET_PATTERNS}.
 */
export class SecretScrubber {
  readonly #known: string[] = [];
  readonly #limit: number;

  constructor(limit = 8) {
    this.#limit = limit;
  }

  /** Registers a secret; short strings are ignored (they would redact ordinary words). */
  add(secret: string | undefined): void {
    if (typeof secret !== "string" || secret.length < 4 || this.#known.includes(secret)) return;
    this.#known.push(secret);
    // Tokens rotate; the oldest one is forgotten, configured passwords are registered first and kept.
    if (this.#known.length > this.#limit) this.#known.splice(1, 1);
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.#known) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    }
    for (const pattern of SECRET_PATTERNS) {
      out = out.replace(pattern, (_match, prefix: unknown) =>
        typeof prefix === "string" ? `${prefix}${REDACTED}` : REDACTED,
      );
    }
    return out;
  }
}

/** Log fields forwarded from kafkajs entries; anything else (request payloads, configs) is left out. */
const FORWARDED_FIELDS = ["broker", "clientId", "groupId", "topic", "partition", "retryCount", "retryTime"];

const LEVELS: Readonly<Record<KafkaLogLevel, logLevel>> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
};

/** kafkajs's numeric level for a {@link KafkaLogLevel}. */
export function toKafkaJsLogLevel(level: KafkaLogLevel): logLevel {
  return LEVELS[level];
}

/** Same message from the same kafkajs component at most this often (a dead broker logs on every retry). */
const REPEAT_INTERVAL_MS = 30_000;
const MAX_TRACKED_MESSAGES = 200;

/**
 * A kafkajs `logCreator` that forwards entries to a {@link KafkaLogger}: messages and the error text are
 * scrubbed of secrets, only a few safe fields are kept, and a repeated message is logged at most once per
 * 30 s with a count of what was suppressed, so an outage cannot flood the host's logs.
 */
export function createKafkaLogCreator(
  logger: KafkaLogger,
  scrubber: SecretScrubber,
  now: () => number = Date.now,
  silenced: () => boolean = () => false,
): logCreator {
  const lastSeen = new Map<string, { at: number; suppressed: number }>();
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      if (silenced()) return;
      try {
        const message = scrubber.scrub(`kafkajs ${namespace}: ${String(log.message)}`);
        const key = `${level}|${message}`;
        const at = now();
        const seen = lastSeen.get(key);
        if (seen !== undefined && at - seen.at < REPEAT_INTERVAL_MS) {
          seen.suppressed++;
          return;
        }
        if (lastSeen.size >= MAX_TRACKED_MESSAGES) lastSeen.clear();
        lastSeen.set(key, { at, suppressed: 0 });
        const context: Record<string, unknown> = {};
        const record = log as unknown as Record<string, unknown>;
        for (const field of FORWARDED_FIELDS) {
          const value = record[field];
          if (typeof value === "string") context[field] = scrubber.scrub(value);
          else if (typeof value === "number" || typeof value === "boolean") context[field] = value;
        }
        if (typeof record.error === "string") context.error = scrubber.scrub(record.error);
        if (seen !== undefined && seen.suppressed > 0) context.repeatedSinceLastLog = seen.suppressed;
        if (level === logLevel.ERROR && logger.error !== undefined) logger.error(message, context);
        else logger.warn(message, context);
      } catch {
        // A broken logger must never break the Kafka client.
      }
    };
}
