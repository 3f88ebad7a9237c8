/**
 * Azure Event Hubs through its Kafka endpoint: shared access keys (PLAIN with `$ConnectionString`) or
 * Microsoft Entra ID (OAUTHBEARER with a `TokenCredential`; `@azure/identity` is an optional peer
 * dependency, loaded only when no credential is passed).
 * @module
 */
import { ConfigurationError, type DeliveryOptions } from "@streamll/core";
import { loadOptionalPackages, v, validateOptions } from "@streamll/core/internal";
import {
  type KafkaConnectionOptions,
  type KafkaOAuthTokenProvider,
  type KafkaTlsOptions,
  kafkaConnectionOptionsSchema,
} from "./kafka-connection";

/** The SASL PLAIN user name Event Hubs expects with a connection string as the password. */
export const EVENT_HUBS_USERNAME = "$ConnectionString";

/** Event Hubs closes a connection whose request exceeds 1 046 528 bytes; requests stay below this. */
export const EVENT_HUBS_MAX_REQUEST_BYTES = 1_000_000;

/**
 * Settings Event Hubs needs, applied by both helpers: requests below its 1 046 528-byte limit, metadata
 * refreshed (and keep-alive probes sent) well within its 240 s idle timeout, and a 60 s request timeout as
 * Microsoft recommends for the Kafka endpoint.
 */
export const EVENT_HUBS_CONNECTION_DEFAULTS = Object.freeze({
  maxMessageBytes: EVENT_HUBS_MAX_REQUEST_BYTES,
  metadataMaxAgeMs: 180_000,
  keepAliveDelayMs: 60_000,
  requestTimeoutMs: 60_000,
});

/**
 * Delivery settings for a sink writing to Event Hubs: pipeline batches below the request limit, so each batch
 * is one request. Pass as the sink entry's `delivery`.
 */
export const EVENT_HUBS_DELIVERY: Readonly<DeliveryOptions> = Object.freeze({
  maxBatchBytes: EVENT_HUBS_MAX_REQUEST_BYTES - 50_000,
});

/** A Microsoft Entra token source: `@azure/identity`'s `TokenCredential` (only `getToken` is used). */
export interface EntraTokenCredential {
  getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

/** Options shared by both Event Hubs helpers. */
interface EventHubsCommonOptions {
  /**
   * Brokers to connect to. Default `<namespace>.servicebus.windows.net:9093`. Override only to reach the
   * namespace through a private endpoint or a proxy.
   */
  brokers?: KafkaConnectionOptions["brokers"];
  /** TLS settings. Default `true` (verified with the public CAs bundled with Node). */
  tls?: boolean | KafkaTlsOptions;
}

/** Options of {@link eventHubsConnectionString}. */
export interface EventHubsConnectionStringOptions extends EventHubsCommonOptions {
  /**
   * `Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=...` (a
   * namespace-level string, or one with `EntityPath=<event hub>`). Never logged.
   */
  connectionString: string;
}

/** Options of {@link eventHubsEntra}. */
export interface EventHubsEntraOptions extends EventHubsCommonOptions {
  /** The namespace: `my-namespace` or `my-namespace.servicebus.windows.net`. */
  namespace: string;
  /**
   * Token source, e.g. `new DefaultAzureCredential()` or `new ManagedIdentityCredential()`. Default: a
   * `DefaultAzureCredential` from `@azure/identity`, created once.
   */
  credential?: EntraTokenCredential;
  /** Refresh tokens this long before they expire. Default 60 000 ms. */
  refreshAheadMs?: number;
}

const commonOptionsSchema = v.object<EventHubsCommonOptions>({
  brokers: kafkaConnectionOptionsSchema.shape.brokers.optional(),
  tls: kafkaConnectionOptionsSchema.shape.tls,
});

const connectionStringOptionsSchema = commonOptionsSchema.extend<EventHubsConnectionStringOptions>({
  connectionString: v.string({
    pattern: /SharedAccess(?:Key|Signature)/i,
    expected: "an Event Hubs connection string with SharedAccessKey or SharedAccessSignature",
  }),
});

const entraOptionsSchema = commonOptionsSchema.extend<EventHubsEntraOptions>({
  namespace: v.string({
    min: 1,
    expected: "a namespace like my-namespace or my-namespace.servicebus.windows.net",
  }),
  credential: v
    .custom<EntraTokenCredential>(
      "a TokenCredential from @azure/identity (an object with getToken)",
      (value) => typeof (value as { getToken?: unknown } | null)?.getToken === "function",
    )
    .optional(),
  refreshAheadMs: v.number({ min: 0 }).optional(),
});

function configError(path: string, message: string): ConfigurationError {
  return new ConfigurationError(`invalid Event Hubs options: ${message}`, [{ path, message }]);
}

/** The fully qualified namespace of an Event Hubs connection string's `Endpoint`. */
export function parseEventHubsNamespace(connectionString: string): string {
  const endpoint = /(?:^|;)\s*Endpoint\s*=\s*sb:\/\/([^/;\s]+)\/?\s*(?:;|$)/i.exec(connectionString);
  if (endpoint === null) {
    throw configError(
      "connectionString",
      "connectionString must contain Endpoint=sb://<namespace>.servicebus.windows.net/",
    );
  }
  return endpoint[1]!.toLowerCase();
}

function fullNamespace(namespace: string): string {
  const trimmed = namespace
    .trim()
    .toLowerCase()
    .replace(/^sb:\/\//, "")
    .replace(/\/$/, "");
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(trimmed)) {
    throw configError(
      "namespace",
      "namespace must be a name like my-namespace or my-namespace.servicebus.windows.net",
    );
  }
  return trimmed.includes(".") ? trimmed : `${trimmed}.servicebus.windows.net`;
}

/**
 * Connection settings for Event Hubs with a shared access key: SASL_SSL PLAIN, user `$ConnectionString`,
 * password the whole connection string, plus {@link EVENT_HUBS_CONNECTION_DEFAULTS}.
 */
export function eventHubsConnectionString(options: EventHubsConnectionStringOptions): KafkaConnectionOptions {
  validateOptions("eventHubsConnectionString()", connectionStringOptionsSchema, options);
  const connectionString = options.connectionString;
  const namespace = parseEventHubsNamespace(connectionString);
  return {
    ...EVENT_HUBS_CONNECTION_DEFAULTS,
    brokers: options.brokers ?? [`${namespace}:9093`],
    tls: options.tls ?? true,
    sasl: { mechanism: "plain", username: EVENT_HUBS_USERNAME, password: connectionString },
  };
}

/** The Entra scope for a namespace: `https://<namespace>.servicebus.windows.net/.default`. */
export function eventHubsScope(namespace: string): string {
  return `https://${fullNamespace(namespace)}/.default`;
}

/**
 * A token provider for Event Hubs from a `TokenCredential`, asking for the namespace's `.default` scope.
 * The credential (given, or a `DefaultAzureCredential` created on first use) is kept for the client's life.
 */
export function createEventHubsTokenProvider(
  namespace: string,
  credential?: EntraTokenCredential,
): KafkaOAuthTokenProvider {
  const scope = eventHubsScope(namespace);
  let source: Promise<EntraTokenCredential> | undefined =
    credential === undefined ? undefined : Promise.resolve(credential);
  return async () => {
    source ??= loadOptionalPackages("Event Hubs Entra ID authentication", [
      ["@azure/identity", () => import("@azure/identity")],
    ]).then(([identity]) => new identity.DefaultAzureCredential());
    source.catch(() => {
      source = undefined;
    });
    const token = await (await source).getToken(scope);
    if (token === null || typeof token.token !== "string") {
      throw new Error(`the Entra credential returned no token for ${scope}`);
    }
    return { token: token.token, expiresAt: token.expiresOnTimestamp };
  };
}

/**
 * Connection settings for Event Hubs with Microsoft Entra ID: SASL_SSL OAUTHBEARER with tokens for
 * `https://<namespace>.servicebus.windows.net/.default`, cached and refreshed ahead of expiry, plus
 * {@link EVENT_HUBS_CONNECTION_DEFAULTS}. The identity needs the "Azure Event Hubs Data Sender" role to
 * produce and "Azure Event Hubs Data Receiver" to consume.
 */
export function eventHubsEntra(options: EventHubsEntraOptions): KafkaConnectionOptions {
  validateOptions("eventHubsEntra()", entraOptionsSchema, options);
  const namespace = fullNamespace(options.namespace);
  return {
    ...EVENT_HUBS_CONNECTION_DEFAULTS,
    brokers: options.brokers ?? [`${namespace}:9093`],
    tls: options.tls ?? true,
    sasl: {
      mechanism: "oauthbearer",
      tokenProvider: createEventHubsTokenProvider(namespace, options.credential),
      ...(options.refreshAheadMs === undefined ? {} : { refreshAheadMs: options.refreshAheadMs }),
    },
  };
}
