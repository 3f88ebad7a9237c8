import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import * as amazonMq from "./amazon-mq";
import * as rabbitmq from "./index";

/**
 * Every public constructor and factory of @streamll/sink-rabbitmq (and its /amazon-mq entry) given a
 * misspelled option, at the top level and nested. Nothing connects: the options are rejected first.
 */
const cases: readonly MisspellingCase[] = [
  {
    name: "RabbitMQSink",
    call: (options) => new rabbitmq.RabbitMQSink(options as rabbitmq.RabbitMQSinkOptions),
    top: ["exchnage", "exchange"],
    nested: [{ tls: { rejectUnauthorised: false } }, "tls.rejectUnauthorised", "rejectUnauthorized"],
  },
  {
    name: "RabbitMQSink (queue)",
    call: (options) => new rabbitmq.RabbitMQSink(options as rabbitmq.RabbitMQSinkOptions),
    top: ["connectTimeout", "connectTimeoutMs"],
    nested: [{ queue: { name: "q", bindingKey: ["#"] } }, "queue.bindingKey", "bindingKeys"],
  },
  {
    name: "RabbitMQSink (queue arguments)",
    call: (options) => new rabbitmq.RabbitMQSink(options as rabbitmq.RabbitMQSinkOptions),
    top: ["connectTimeout", "connectTimeoutMs"],
    nested: [
      { queue: { name: "q", arguments: { "x-max-lenght": 1 } } },
      "queue.arguments.x-max-lenght",
      "x-max-length",
    ],
  },
  {
    name: "RabbitMQSink (reconnect)",
    call: (options) => new rabbitmq.RabbitMQSink(options as rabbitmq.RabbitMQSinkOptions),
    top: ["connectionname", "connectionName"],
    nested: [{ reconnect: { jiter: 0.1 } }, "reconnect.jiter", "jitter"],
  },
  {
    name: "RabbitMQEventReader",
    call: (options) => new rabbitmq.RabbitMQEventReader({ queue: "q", ...options }),
    top: ["prefech", "prefetch"],
    nested: [{ deadLetter: { exchnage: "dlx" } }, "deadLetter.exchnage", "exchange"],
  },
  {
    name: "RabbitMQEventReader (tls)",
    call: (options) => new rabbitmq.RabbitMQEventReader({ queue: "q", ...options }),
    top: ["delcare", "declare"],
    nested: [{ url: "amqps://h", tls: { servrname: "h" } }, "tls.servrname", "servername"],
  },
  {
    name: "amazonMqIamCredentials",
    call: (options) => amazonMq.amazonMqIamCredentials({ audience: "a", ...options }),
    top: ["signingAlgorithms", "signingAlgorithm"],
  },
  {
    name: "oauth2ClientCredentials",
    call: (options) =>
      amazonMq.oauth2ClientCredentials({
        tokenUrl: "https://login.example.com/token",
        clientId: "c",
        clientSecret: "s",
        ...options,
      }),
    top: ["scopes", "scope"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys, at the top level and nested", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    // Positional arguments only: a template string, or a key part.
    const withoutOptions = ["compileRoutingKey", "sanitizeRoutingKeyPart"];
    expect(exportsWithoutCases([rabbitmq, amazonMq], cases, withoutOptions)).toEqual([]);
  });
});
