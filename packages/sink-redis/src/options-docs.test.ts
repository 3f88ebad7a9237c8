// The README's option tables list exactly what the validator accepts: an option added to a schema and not to
// its table (or a table row for an option that is gone) fails here.
import { readFileSync } from "node:fs";
import { acceptedOptionKeys, optionsTableProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import { azureEntraAuth } from "./azure";
import { createElastiCacheIamToken, elastiCacheIamAuth } from "./elasticache";
import { memorystoreIamAuth } from "./memorystore";
import { RedisEventReader } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const GUIDE = readFileSync(new URL("../../../docs/production/redis.md", import.meta.url), "utf8");
const SINK_ONLY = ["stream", "maxLen", "approximateTrim", "name", "onError"];

describe("option tables of the sink-redis README", () => {
  it("list every option the sink and the reader accept, and nothing else", async () => {
    const sink = (options: object) => new RedisSink(options as never);
    // The reader takes the sink's connection options, documented once in the sink's first table.
    const connection = Object.fromEntries(
      (await acceptedOptionKeys(sink))
        .filter((key) => !SINK_ONLY.includes(key))
        .map((key) => [key, "a connection option, in the RedisSink table"]),
    );
    expect(
      await optionsTableProblems(README, [
        { name: "RedisSink", call: sink },
        {
          name: "RedisEventReader",
          call: (options) => new RedisEventReader(options as never),
          undocumented: connection,
        },
      ]),
    ).toEqual([]);
  });
});

describe("option tables of the Redis production guide", () => {
  it("list every option the cloud-auth adapters accept, and nothing else", async () => {
    const call =
      <T>(adapter: (options: T) => unknown) =>
      (options: object) =>
        adapter(options as T);
    expect(
      await optionsTableProblems(GUIDE, [
        { name: "elastiCacheIamAuth", call: call(elastiCacheIamAuth) },
        { name: "createElastiCacheIamToken", call: call(createElastiCacheIamToken) },
        { name: "azureEntraAuth", call: call(azureEntraAuth) },
        { name: "memorystoreIamAuth", call: call(memorystoreIamAuth) },
      ]),
    ).toEqual([]);
  });
});
