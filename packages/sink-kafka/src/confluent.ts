/**
 * Confluent Cloud: SASL_SSL with PLAIN and a cluster API key and secret.
 * @module
 */
import { ConfigurationError } from "@streamll/core";
import type { KafkaConnectionOptions, KafkaTlsOptions } from "./kafka-connection";

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
export function confluentCloud(options: ConfluentCloudOptions): KafkaConnectionOptions {
  const issues: { path: string; message: string }[] = [];
  const server = options?.bootstrapServer;
  if (typeof server !== "string" || !/^[^\s:/]+:\d+$/.test(server)) {
    issues.push({
      path: "bootstrapServer",
      message: "bootstrapServer must look like pkc-xxxxx.<region>.<provider>.confluent.cloud:9092",
    });
  }
  for (const key of ["apiKey", "apiSecret"] as const) {
    if (typeof options?.[key] !== "string" || options[key].length === 0) {
      issues.push({ path: key, message: `${key} must be a non-empty string` });
    }
  }
  if (issues.length > 0) {
    throw new ConfigurationError(`invalid Confluent Cloud options: ${issues[0]!.message}`, issues);
  }
  return {
    brokers: [server],
    tls: options.tls ?? true,
    sasl: { mechanism: "plain", username: options.apiKey, password: options.apiSecret },
  };
}
