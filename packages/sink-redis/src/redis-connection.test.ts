import { inspect } from "node:util";
import { ConfigurationError } from "@streamll/core";
import type { Cluster, Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { parseRedisUrl, RedisConnection } from "./redis-connection";
import type { RedisSinkError } from "./redis-errors";
import { RedisSink, type RedisSinkOptions } from "./redis-sink";
import { freePort } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

describe("parseRedisUrl", () => {
  it("reads host, port, user, password, database and TLS", () => {
    expect(parseRedisUrl("rediss://streamll:p%40ss%2Fword@cache.example.com:6380/2")).toEqual({
      host: "cache.example.com",
      port: 6380,
      username: "streamll",
      password: "p@ss/word",
      db: 2,
      tls: true,
    });
    expect(parseRedisUrl("redis://:only-password@10.0.0.5")).toMatchObject({
      host: "10.0.0.5",
      port: 6379,
      username: undefined,
      password: "only-password",
      tls: false,
    });
    expect(parseRedisUrl("redis://[::1]:7000")).toMatchObject({ host: "::1", port: 7000 });
  });

  it("rejects other schemes and never repeats the URL (it may hold a password)", () => {
    const error = (() => {
      try {
        parseRedisUrl("http://user:hunter2-secret@example.com");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(inspect(error)).not.toContain("hunter2-secret");
    expect(() => parseRedisUrl("not a url with hunter2")).toThrow(ConfigurationError);
    // Written without a scheme, `user:password@host` parses with the user as its scheme: never echoed.
    expect(() => parseRedisUrl("hunter2-secret:x@example.com")).toThrow(/got another scheme$/);
    expect(
      inspect(catchError(() => parseRedisUrl("hunter2-secret:x@example.com"))).toLowerCase(),
    ).not.toContain("hunter2-secret");
    expect(() => parseRedisUrl("http://example.com")).toThrow(/got http:\/\/$/);
  });
});

describe("RedisConnection options", () => {
  it("turns on TLS with verification for rediss:// and keeps host names for cluster TLS", async () => {
    const standalone = new RedisConnection(
      { url: "rediss://cache.example.com:6380" },
      { connectionName: "t" },
    );
    const options = (standalone.client as Redis).options;
    expect(options.tls).toEqual({});
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.maxRetriesPerRequest).toBe(0);
    expect(options.lazyConnect).toBe(true);
    await standalone.close();

    const cluster = new RedisConnection(
      {
        url: "rediss://clustercfg.events.abc123.euw1.cache.amazonaws.com:6379",
        cluster: true,
        password: "tok",
      },
      { connectionName: "t" },
    );
    const clusterOptions = (cluster.client as Cluster).options;
    expect(cluster.isCluster).toBe(true);
    expect(clusterOptions.enableOfflineQueue).toBe(false);
    expect(clusterOptions.redisOptions?.tls).toEqual({});
    expect(clusterOptions.redisOptions?.password).toBe("tok");
    let looked: string | undefined;
    clusterOptions.dnsLookup?.("node.example", (_error, address) => {
      looked = address;
    });
    expect(looked).toBe("node.example");
    await cluster.close();
  });

  it("validates credentials and timeouts through the sink's options", () => {
    const issues = (options: object) => {
      try {
        new RedisSink(options as RedisSinkOptions);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigurationError);
        return (error as ConfigurationError).issues;
      }
      return [];
    };
    expect(issues({ credentials: { refreshAheadMs: 1 } })).toEqual([
      { path: "credentials.provider", message: "is required (a credential provider function)" },
    ]);
    expect(issues({ connectTimeoutMs: 0 })[0]?.path).toBe("connectTimeoutMs");
    expect(issues({ port: 70_000 })).toEqual([
      { path: "port", message: "expected an integer between 1 and 65535, got 70000" },
    ]);
    expect(issues({ db: -1 })[0]?.message).toBe("expected an integer >= 0, got -1");
    expect(issues({ password: "p", credentials: async () => ({ password: "x" }) })).toEqual([
      { path: "password", message: "cannot be combined with credentials, which replace it" },
    ]);
    expect(issues({ tls: { rejectUnauthorised: false } })[0]?.message).toMatch(
      /^unknown option; did you mean `rejectUnauthorized`\? \(allowed: /,
    );
    // Redis Cluster has one database; a db in the URL would be silently ignored otherwise.
    expect(
      () => new RedisConnection({ url: "redis://10.0.0.1:6379/2", cluster: true }, { connectionName: "t" }),
    ).toThrow(/Redis Cluster has only database 0/);
  });

  it("reports failed credential refreshes to onError without the secret", async () => {
    const secret = "refresh-secret-0123456789";
    let calls = 0;
    const errors: RedisSinkError[] = [];
    const connection = new RedisConnection(
      {
        port: await freePort(),
        connectTimeoutMs: 100,
        credentials: {
          refreshAheadMs: 1_000,
          provider: async () => {
            calls += 1;
            if (calls > 1) throw new Error(`token service rejected ${secret}`);
            return { username: "u", password: secret, expiresAt: Date.now() + 2_000 };
          },
        },
      },
      { connectionName: "t", onError: (error) => errors.push(error) },
    );
    // Fetches the first credential, then gives up on the (absent) server.
    await expect(connection.ready()).rejects.toThrow(/not ready/);
    await waitUntil(
      () => errors.some((e) => e.message.includes("credential refresh failed")),
      "a refresh warning",
    );
    for (const error of errors) expect(inspect(error, { depth: 5 })).not.toContain(secret);
    await connection.close();
  });
});

function catchError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("no error thrown");
}
