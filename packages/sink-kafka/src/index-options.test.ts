import { exportsWithoutCases, type MisspellingCase, misspelledOptionProblems } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import * as confluent from "./confluent";
import * as eventHubs from "./event-hubs";
import * as kafka from "./index";
import * as msk from "./msk";

/**
 * Every public constructor and factory of @streamll/sink-kafka (and its /msk, /confluent, /event-hubs
 * entries) given a misspelled option, at the top level and nested: nothing connects, the options are
 * rejected first.
 */
const brokers = ["127.0.0.1:9092"];
const ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/events/2f0e8c2a-1b2c-4d5e-9f00-1234567890ab-2";
const reader = new kafka.KafkaEventReader({ brokers, groupId: "g" });

const cases: readonly MisspellingCase[] = [
  {
    name: "KafkaSink",
    call: (options) => new kafka.KafkaSink({ brokers, ...options } as kafka.KafkaSinkOptions),
    top: ["topc", "topic"],
    nested: [{ sasl: { mechanism: "plain", user: "u", password: "p" } }, "sasl.user", "username"],
  },
  {
    name: "KafkaSink (tls)",
    call: (options) => new kafka.KafkaSink({ brokers, tls: options } as kafka.KafkaSinkOptions),
    top: ["rejectUnauthorised", "rejectUnauthorized"],
  },
  {
    name: "KafkaSink (createTopic)",
    call: (options) => new kafka.KafkaSink({ brokers, createTopic: options } as kafka.KafkaSinkOptions),
    top: ["numPartition", "numPartitions"],
  },
  {
    name: "KafkaEventReader",
    call: (options) => new kafka.KafkaEventReader({ brokers, groupId: "g", ...options }),
    top: ["fromBegining", "fromBeginning"],
    nested: [{ retry: { retrys: 1 } }, "retry.retrys", "retries"],
  },
  {
    name: "KafkaEventReader (sasl oauthbearer)",
    call: (options) =>
      new kafka.KafkaEventReader({
        brokers,
        groupId: "g",
        sasl: { mechanism: "oauthbearer", tokenProvider: async () => ({ token: "t" }), ...options },
      } as kafka.KafkaEventReaderOptions),
    top: ["refreshAhead", "refreshAheadMs"],
  },
  {
    name: "replayExecution",
    call: (options) => reader.replayExecution("exe_0000001", options),
    top: ["timeout", "timeoutMs"],
  },
  {
    name: "readTlsFiles",
    call: (options) => kafka.readTlsFiles(options as kafka.KafkaTlsFiles),
    top: ["cafile", "caFile"],
  },
  {
    name: "mskIam",
    call: (options) => msk.mskIam({ brokers, region: "eu-west-1", ...options }),
    top: ["regoin", "region"],
    nested: [
      { credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s", sesionToken: "t" } },
      "credentials.sesionToken",
      "sessionToken",
    ],
  },
  {
    name: "mskServerless",
    call: (options) => msk.mskServerless({ bootstrapServer: "boot:9098", region: "eu-west-1", ...options }),
    top: ["roleARN", "roleArn"],
  },
  {
    name: "createMskIamTokenProvider",
    call: (options) => msk.createMskIamTokenProvider({ region: "eu-west-1", ...options }),
    top: ["profil", "profile"],
  },
  {
    name: "mskScram",
    call: (options) => msk.mskScram({ brokers, username: "u", password: "p", ...options }),
    top: ["user", "username"],
  },
  {
    name: "mskTls",
    call: (options) => msk.mskTls({ brokers, ...options }),
    top: ["tsl", "tls"],
    nested: [{ tls: { certt: "c", key: "k" } }, "tls.certt", "cert"],
  },
  {
    name: "discoverMskBrokers",
    call: (options) => msk.discoverMskBrokers({ clusterArn: ARN, authentication: "iam", ...options }),
    top: ["publicAcess", "publicAccess"],
  },
  {
    name: "mskBrokersFromArn",
    call: (options) => msk.mskBrokersFromArn({ clusterArn: ARN, authentication: "iam", ...options }),
    top: ["endpiont", "endpoint"],
  },
  {
    name: "confluentCloud",
    call: (options) =>
      confluent.confluentCloud({
        bootstrapServer: "pkc-1.confluent.cloud:9092",
        apiKey: "k",
        apiSecret: "s",
        ...options,
      }),
    top: ["apikey", "apiKey"],
    nested: [{ tls: { servrname: "x" } }, "tls.servrname", "servername"],
  },
  {
    name: "eventHubsConnectionString",
    call: (options) =>
      eventHubs.eventHubsConnectionString({
        connectionString: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s",
        ...options,
      }),
    top: ["connectionstring", "connectionString"],
  },
  {
    name: "eventHubsEntra",
    call: (options) => eventHubs.eventHubsEntra({ namespace: "ns", ...options }),
    top: ["credentials", "credential"],
    nested: [{ tls: { minVersoin: "TLSv1.3" } }, "tls.minVersoin", "minVersion"],
  },
];

describe("every public options object rejects a misspelled key", () => {
  it("names the path, the meant key and the allowed keys, at the top level and nested", async () => {
    expect(await misspelledOptionProblems(cases)).toEqual([]);
  });

  it("covers every exported function and class that takes an options object", () => {
    const withoutOptions = [
      "reconstructExecution",
      "isRejectedRecordError",
      "kafkaErrorType",
      "KafkaReaderError",
      "eventHeaders",
      "toKafkaMessage",
      "parseEventHubsNamespace",
      "eventHubsScope",
      // (namespace, credential?): positional, the credential is checked for getToken when used.
      "createEventHubsTokenProvider",
    ];
    expect(exportsWithoutCases([kafka, msk, confluent, eventHubs], cases, withoutOptions)).toEqual([]);
  });
});
