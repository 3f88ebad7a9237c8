// The README's option tables list exactly what the validator accepts: an option added to a schema and not to
// its table (or a table row for an option that is gone) fails here.
import { readFileSync } from "node:fs";
import { acceptedOptionKeys, optionsTableProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import { confluentCloud } from "./confluent";
import { eventHubsConnectionString, eventHubsEntra } from "./event-hubs";
import { KafkaEventReader } from "./kafka-event-reader";
import { KafkaSink } from "./kafka-sink";
import {
  createMskIamTokenProvider,
  discoverMskBrokers,
  mskBrokersFromArn,
  mskIam,
  mskScram,
  mskServerless,
  mskTls,
} from "./msk";
import { readTlsFiles } from "./tls-files";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const GUIDE = readFileSync(new URL("../../../docs/production/kafka.md", import.meta.url), "utf8");

describe("option tables of the sink-kafka README", () => {
  it("list every option the sink and the reader accept, and nothing else", async () => {
    const sink = (options: object) => new KafkaSink(options as never);
    // The reader takes the sink's connection options, documented once in the sink's table.
    const connection = Object.fromEntries(
      (await acceptedOptionKeys(sink))
        .filter(
          (key) =>
            !["name", "topic", "createTopic", "acks", "idempotent", "compression", "ackTimeoutMs"].includes(
              key,
            ),
        )
        .map((key) => [key, "a connection option, in the KafkaSink table"]),
    );
    expect(
      await optionsTableProblems(README, [
        { name: "KafkaSink", call: sink },
        {
          name: "KafkaEventReader",
          call: (options) => new KafkaEventReader(options as never),
          undocumented: connection,
        },
      ]),
    ).toEqual([]);
  });
});

describe("option tables of the Kafka production guide", () => {
  it("list every option the cloud adapters and readTlsFiles accept, and nothing else", async () => {
    const call =
      <T>(adapter: (options: T) => unknown) =>
      (options: object) =>
        adapter(options as T);
    expect(
      await optionsTableProblems(GUIDE, [
        { name: "readTlsFiles", call: call(readTlsFiles) },
        { name: "mskIam", call: call(mskIam) },
        { name: "createMskIamTokenProvider", call: call(createMskIamTokenProvider) },
        { name: "MskDiscoveryOptions", call: call(discoverMskBrokers) },
        { name: "MskDiscoveryOptions", call: call(mskBrokersFromArn) },
        { name: "mskScram", call: call(mskScram) },
        { name: "mskTls", call: call(mskTls) },
        { name: "mskServerless", call: call(mskServerless) },
        { name: "confluentCloud", call: call(confluentCloud) },
        { name: "eventHubsConnectionString", call: call(eventHubsConnectionString) },
        { name: "eventHubsEntra", call: call(eventHubsEntra) },
      ]),
    ).toEqual([]);
  });
});
