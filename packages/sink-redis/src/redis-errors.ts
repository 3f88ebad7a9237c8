import { SinkError } from "@streamll/core";

/**
 * Redis error replies that mean "the server is busy, moving or (re)authenticating — the same command may succeed
 * later". `NOAUTH`/`WRONGPASS` as the reply to a command are retried here (the connection under it is re-opened);
 * as the answer to the login itself they are decided by `RedisConnection`, which treats a rejected static
 * password, or a provider's credential rejected again after a fresh fetch, as a `ConfigurationError` (see
 * {@link isAuthRejection}). Every other error reply (`OOM`, `WRONGTYPE`, `NOPERM`, `ERR …`, `EXECABORT`, …) means the server
 * looked at the command and refused it; sending it again gives the same answer, so the event is dropped and
 * counted as `rejected` instead of blocking the queue.
 *
 * `OOM` is on the rejecting side on purpose: a full `noeviction` server stays full until someone trims it, and
 * retrying would pin the whole backlog behind it; the drops are counted and `lastError` names the cause.
 */
const RETRIABLE_REPLY_CODES = new Set([
  "LOADING",
  "BUSY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "MASTERDOWN",
  "READONLY",
  "MOVED",
  "ASK",
  "NOAUTH",
  "WRONGPASS",
  "NOREPLICAS",
  "UNBLOCKED",
]);

const MAX_MESSAGE_LENGTH = 300;

/**
 * An error from Redis or the connection to it, with a message that never contains secrets: ioredis attaches the
 * command (including `AUTH`/`HELLO` arguments) to its errors and some server replies echo arguments, so the
 * original error is never kept as `cause`.
 */
export class RedisSinkError extends SinkError {
  /** The Redis error code (`WRONGTYPE`, `NOPERM`, `OOM`, …) or the socket error code (`ECONNREFUSED`, …). */
  readonly redisCode: string | undefined;

  constructor(
    message: string,
    options: {
      retriable: boolean;
      redisCode?: string | undefined;
      code?: "SINK_SEND_FAILED" | "SINK_EVENT_REJECTED" | "SINK_CLOSED" | "SEND_TIMEOUT";
    },
  ) {
    super(message, {
      retriable: options.retriable,
      ...(options.code === undefined ? {} : { code: options.code }),
    });
    this.name = "RedisSinkError";
    this.redisCode = options.redisCode;
  }
}

/** True for an error reply from the server (as opposed to a socket, timeout or client-side error). */
function isReplyError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  return error.name === "ReplyError" || error.constructor.name === "ReplyError";
}

/** The leading upper-case word of an error reply (`WRONGTYPE`, `NOPERM`, `ERR`), or the socket error code. */
export function redisErrorCode(error: unknown): string | undefined {
  if (isReplyError(error)) {
    const match = /^([A-Z][A-Z_-]*)\b/.exec(error.message);
    return match?.[1];
  }
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/**
 * Whether sending the same command again could succeed: connection, socket and timeout errors are retriable,
 * error replies are not unless their code is listed in {@link RETRIABLE_REPLY_CODES}.
 */
export function isRetriableRedisError(error: unknown): boolean {
  if (!isReplyError(error)) return true;
  const code = redisErrorCode(error);
  return code !== undefined && RETRIABLE_REPLY_CODES.has(code);
}

/**
 * True for the server's refusal of a login: `WRONGPASS` (wrong password, unknown or disabled user), `NOAUTH`
 * (a password is required and none was sent) and Redis 5's `ERR invalid password`. Socket, timeout, TLS and
 * every other reply (`LOADING`, `BUSY`, …) are not: those stay transient.
 */
export function isAuthRejection(error: unknown): boolean {
  if (!isReplyError(error)) return false;
  const code = redisErrorCode(error);
  if (code === "WRONGPASS" || code === "NOAUTH") return true;
  return code === "ERR" && /^ERR invalid (username-)?password/i.test(error.message);
}

/**
 * A log-safe message for any error from ioredis: known secrets are masked, arguments the server echoes back
 * (`with args beginning with: …`) are cut, and the message is capped.
 */
export function safeRedisMessage(error: unknown, secrets: readonly string[] = []): string {
  let message: string;
  if (error instanceof Error) message = error.message;
  else if (typeof error === "string") message = error;
  else message = "unknown error";
  message = message.replace(/with args beginning with:.*$/s, "with args beginning with: [redacted]");
  for (const secret of secrets) {
    // Short secrets would mask ordinary words; real tokens and passwords are long.
    if (secret.length >= 4) message = message.split(secret).join("[redacted]");
  }
  if (message.length > MAX_MESSAGE_LENGTH) message = `${message.slice(0, MAX_MESSAGE_LENGTH)}…`;
  return message;
}

/** Wraps any ioredis error into a {@link RedisSinkError} with a safe message and the right retriable flag. */
export function toRedisSinkError(
  error: unknown,
  context: string,
  secrets: readonly string[] = [],
): RedisSinkError {
  if (error instanceof RedisSinkError) return error;
  const retriable = isRetriableRedisError(error);
  const redisCode = redisErrorCode(error);
  return new RedisSinkError(`${context}: ${safeRedisMessage(error, secrets)}`, { retriable, redisCode });
}
