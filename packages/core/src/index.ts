export {
  StreamllError,
  ConfigurationError,
  SinkError,
  CredentialError,
  isRetriableError,
  type StreamllErrorCode,
} from "./errors";
export {
  streamllEventSchema,
  SCHEMA_VERSION,
  BUILTIN_EVENT_TYPES,
  type BuiltinEventType,
  type StreamllEvent,
  type JsonValue,
  type JsonObject,
} from "./event-schema";
export type { Sink, EncodedEvent, SendContext, SendResult, EventFailure } from "./sink";
export {
  DROP_REASONS,
  type DropReason,
  type OverflowPolicy,
  type CircuitState,
  type RetryOptions,
  type CircuitBreakerOptions,
  type DeliveryOptions,
  type SinkMetrics,
  type StateChange,
} from "./delivery-types";
export type { Credentials, CredentialProvider } from "./credential-types";
