/**
 * Confluent Cloud: SASL_SSL with PLAIN and a cluster API key and secret.
 * @module
 */
import { v, validateOptions } from "@streamll/core/internal";
import { type KafkaConnectionOptions, type KafkaTlsOptions, kafkaTlsOptionsSchema } from "./kafka-connection";

/** Options of {@link confluentCloud}. */
export interface ConfluentCloudOptions {
  /** The cluster's bootstrap server, `pkc-xxxxx.<region>.<provider>.confluent.cloud:9092`. */
  bootstrapServer: string;
  /** Cluster API key (the SASL user name). */
  apiKey: string;
  /** Cluster API secret. Never logged. */
  apiSecret: string;
  /**
   * TLS settings. Default `true`: the public CAs bundled with Node verify Confluent's certificates. Pass
   * settings only for a private CA (e.g. a proxy in front of the cluster).
   */
  tls?: true | KafkaTlsOptions;
}

/**
 * Connection settings for Confluent Cloud: TLS (verified) on the bootstrap server's port 9092 and SASL
 * PLAIN with the API key and secret. Spread the result into `KafkaSink` or `KafkaEventReader` options.
 */
const confluentCloudOptionsSchema = v.object<ConfluentCloudOptions>({
  bootstrapServer: v.string({
    pattern: /^[^\s:/]+:\d+$/,
    expected: "pkc-xxxxx.<region>.<provider>.confluent.cloud:9092",
  }),
  apiKey: v.string({ min: 1 }),
  apiSecret: v.string({ min: 1 }),
  tls: v.union(v.oneOf([true]), kafkaTlsOptionsSchema).optional(),
});

export function confluentCloud(options: ConfluentCloudOptions): KafkaConnectionOptions {
  validateOptions("confluentCloud()", confluentCloudOptionsSchema, options);
  return {
    brokers: [options.bootstrapServer],
    tls: options.tls ?? true,
    sasl: { mechanism: "plain", username: options.apiKey, password: options.apiSecret },
  };
}
