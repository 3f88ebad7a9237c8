import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import * as azure from "./azure";
import * as elasticache from "./elasticache";
import * as redis from "./index";
import * as memorystore from "./memorystore";

/**
 * Every public constructor and factory of @streamll/sink-redis (and its /elasticache, /azure, /memorystore
 * entries) given a misspelled option, at the top level and nested. Nothing connects: the options are
 * rejected first.
 */
const AWS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
const credential = { getToken: async () => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) };

const cases: readonly MisspellingCase[] = [
  {
    name: "RedisSink",
    call: (options) => new redis.RedisSink(options as redis.RedisSinkOptions),
    top: ["urll", "url"],
    nested: [{ tls: { servrname: "cache" } }, "tls.servrname", "servername"],
  },
  {
    name: "RedisSink (maxlen)",
    call: (options) => new redis.RedisSink(options as redis.RedisSinkOptions),
    top: ["maxlen", "maxLen"],
    nested: [{ cluster: { node: [] } }, "cluster.node", "nodes"],
  },
  {
    name: "RedisSink (streamKey)",
    call: (options) => new redis.RedisSink(options as redis.RedisSinkOptions),
    top: ["streamKey", "stream"],
    nested: [
      { credentials: { provider: async () => ({ password: "x" }), refreshAhead: 1 } },
      "credentials.refreshAhead",
      "refreshAheadMs",
    ],
  },
  {
    name: "RedisSink (cluster nodes)",
    call: (options) => new redis.RedisSink(options as redis.RedisSinkOptions),
    top: ["comandTimeoutMs", "commandTimeoutMs"],
    nested: [{ cluster: { nodes: [{ hots: "10.0.0.1", port: 6379 }] } }, "cluster.nodes[0].hots", "host"],
  },
  {
    name: "RedisEventReader",
    call: (options) => new redis.RedisEventReader({ group: "g", ...options }),
    top: ["claimIdle", "claimIdleMs"],
    nested: [{ startFrom: { ids: "0-0" } }, "startFrom.ids", "id"],
  },
  {
    name: "RedisEventReader (connection)",
    call: (options) => new redis.RedisEventReader({ group: "g", ...options }),
    top: ["commandTimeout", "commandTimeoutMs"],
  },
  {
    name: "run",
    call: (options) => new redis.RedisEventReader({ group: "g" }).run(() => undefined, options),
    top: ["signl", "signal"],
  },
  {
    name: "elastiCacheIamAuth",
    call: (options) =>
      elasticache.elastiCacheIamAuth({ userId: "u", cacheName: "c", region: "eu-west-1", ...options }),
    top: ["serverles", "serverless"],
  },
  {
    name: "createElastiCacheIamToken",
    call: (options) =>
      elasticache.createElastiCacheIamToken({
        userId: "u",
        cacheName: "c",
        region: "eu-west-1",
        credentials: AWS,
        ...options,
      }),
    top: ["expiresIn", "expiresInSeconds"],
    nested: [{ credentials: { ...AWS, sesionToken: "t" } }, "credentials.sesionToken", "sessionToken"],
  },
  {
    name: "azureEntraAuth",
    call: (options) => azure.azureEntraAuth({ credential, ...options }),
    top: ["credentials", "credential"],
  },
  {
    name: "memorystoreIamAuth",
    call: (options) => memorystore.memorystoreIamAuth(options),
    top: ["tokenReuse", "tokenReuseMs"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys, at the top level and nested", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    const withoutOptions = [
      "parseRedisUrl",
      "isRetriableRedisError",
      "RedisSinkError",
      "safeRedisMessage",
      "clusterKeySlot",
      "hashTagOf",
      // (template, path?): a string or function, checked when compiled.
      "compileStreamKey",
      "entraObjectId",
    ];
    expect(exportsWithoutCases([redis, elasticache, azure, memorystore], cases, withoutOptions)).toEqual([]);
  });
});
