// The README's option tables list exactly what the validator accepts: an option added to a schema and not to
// its table (or a table row for an option that is gone) fails here.
import { readFileSync } from "node:fs";
import { acceptedOptionKeys, optionsTableProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import { amazonMqIamCredentials, oauth2ClientCredentials } from "./amazon-mq";
import { RabbitMQEventReader } from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const GUIDE = readFileSync(new URL("../../../docs/production/rabbitmq.md", import.meta.url), "utf8");
const SINK_ONLY = [
  "name",
  "exchange",
  "declareExchange",
  "routingKey",
  "mandatory",
  "queue",
  "whenBlocked",
  "persistent",
  "logger",
];

describe("option tables of the sink-rabbitmq README", () => {
  it("list every option the sink and the reader accept, and nothing else", async () => {
    const sink = (options: object) => new RabbitMQSink(options as never);
    // The reader takes the sink's connection options, documented once in the sink's table.
    const connection = Object.fromEntries(
      (await acceptedOptionKeys(sink))
        .filter((key) => !SINK_ONLY.includes(key))
        .map((key) => [key, "a connection option, in the RabbitMQSink table"]),
    );
    expect(
      await optionsTableProblems(README, [
        { name: "RabbitMQSink", call: sink },
        {
          name: "RabbitMQEventReader",
          call: (options) => new RabbitMQEventReader(options as never),
          undocumented: connection,
        },
      ]),
    ).toEqual([]);
  });
});

describe("option tables of the RabbitMQ production guide", () => {
  it("list every option the credential adapters accept, and nothing else", async () => {
    expect(
      await optionsTableProblems(GUIDE, [
        { name: "amazonMqIamCredentials", call: (options) => amazonMqIamCredentials(options as never) },
        { name: "oauth2ClientCredentials", call: (options) => oauth2ClientCredentials(options as never) },
      ]),
    ).toEqual([]);
  });
});
