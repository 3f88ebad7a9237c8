import { inspect } from "node:util";
import { SinkError } from "@streamll/core";
import { describe, expect, it } from "vitest";
import {
  isAuthRejection,
  isRetriableRedisError,
  RedisSinkError,
  redisErrorCode,
  safeRedisMessage,
  toRedisSinkError,
} from "./redis-errors";

// ioredis' reply errors are named ReplyError and carry the command, arguments included.
function replyError(message: string, args: string[] = []): Error {
  const error = new Error(message);
  error.name = "ReplyError";
  Object.assign(error, { command: { name: "auth", args } });
  return error;
}

describe("error classification", () => {
  it("treats rejections by the server as final", () => {
    for (const message of [
      "WRONGTYPE Operation against a key holding the wrong kind of value",
      "OOM command not allowed when used memory > 'maxmemory'.",
      "NOPERM User u has no permissions to run the 'xadd' command",
      "ERR syntax error",
    ]) {
      expect(isRetriableRedisError(replyError(message)), message).toBe(false);
    }
  });

  it("retries transient replies and anything that is not a reply", () => {
    for (const message of [
      "LOADING Redis is loading the dataset in memory",
      "READONLY You can't write against a read only replica.",
      "CLUSTERDOWN The cluster is down",
      "TRYAGAIN Multiple keys request during rehashing of slot",
      "NOAUTH Authentication required.",
      "WRONGPASS invalid username-password pair or user is disabled.",
    ]) {
      expect(isRetriableRedisError(replyError(message)), message).toBe(true);
    }
    const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(isRetriableRedisError(socket)).toBe(true);
    expect(isRetriableRedisError(new Error("Connection is closed."))).toBe(true);
    expect(redisErrorCode(socket)).toBe("ECONNREFUSED");
    expect(redisErrorCode(replyError("WRONGTYPE x"))).toBe("WRONGTYPE");
  });
});

describe("authentication rejections", () => {
  it("recognises the server refusing a login, and nothing transient", () => {
    for (const message of [
      "WRONGPASS invalid username-password pair or user is disabled.",
      "NOAUTH Authentication required.",
      "ERR invalid password",
    ]) {
      expect(isAuthRejection(replyError(message)), message).toBe(true);
    }
    for (const message of [
      "LOADING Redis is loading the dataset in memory",
      "BUSY Redis is busy running a script.",
      "NOPERM User u has no permissions to run the 'xadd' command",
      "ERR syntax error",
    ]) {
      expect(isAuthRejection(replyError(message)), message).toBe(false);
    }
    const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(isAuthRejection(socket)).toBe(false);
    // Not a reply: a socket or client error that merely mentions it.
    expect(isAuthRejection(new Error("WRONGPASS"))).toBe(false);
  });
});

describe("safe messages", () => {
  it("masks known secrets and echoed arguments, and drops the original error", () => {
    const secret = "s3cr3t-token-value";
    const original = replyError(`ERR unknown command 'FOO', with args beginning with: '${secret}'`, [secret]);
    const wrapped = toRedisSinkError(original, "Redis XADD failed", [secret]);
    expect(wrapped).toBeInstanceOf(RedisSinkError);
    expect(wrapped).toBeInstanceOf(SinkError);
    expect(wrapped.retriable).toBe(false);
    expect(wrapped.code).toBe("SINK_EVENT_REJECTED");
    expect(wrapped.redisCode).toBe("ERR");
    expect(wrapped.message).not.toContain(secret);
    expect(wrapped.cause).toBeUndefined();
    expect(inspect(wrapped, { depth: 10 })).not.toContain(secret);

    expect(safeRedisMessage(new Error(`AUTH failed for ${secret}`), [secret])).toBe(
      "AUTH failed for [redacted]",
    );
    expect(safeRedisMessage("x".repeat(1000)).length).toBeLessThan(320);
  });
});
