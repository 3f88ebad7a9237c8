export {
  type ExecutionReplay,
  type ReplayedError,
  type ReplayedSpan,
  type ReplayedSpanStatus,
  reconstructExecution,
} from "./execution-replay";
export {
  DEFAULT_KAFKA_CONNECTION,
  type KafkaClientRetryOptions,
  type KafkaConnectionOptions,
  type KafkaOAuthSasl,
  type KafkaOAuthToken,
  type KafkaOAuthTokenProvider,
  type KafkaPasswordSasl,
  type KafkaSaslOptions,
  type KafkaTlsOptions,
} from "./kafka-connection";
export { isRejectedRecordError, kafkaErrorType, REJECTED_RECORD_ERROR_TYPES } from "./kafka-errors";
export {
  type KafkaEventHandler,
  KafkaEventReader,
  type KafkaEventReaderOptions,
  type KafkaEventReaderStats,
  type KafkaEventRecord,
  KafkaReaderError,
  type KafkaReaderErrorCode,
  type ReplayOptions,
} from "./kafka-event-reader";
export { consoleKafkaLogger, type KafkaLogger, type KafkaLogLevel } from "./kafka-logger";
export {
  DEFAULT_TOPIC,
  eventHeaders,
  type KafkaCompression,
  KafkaSink,
  type KafkaSinkOptions,
  type KafkaSinkStats,
  type KafkaTopicCreation,
  toKafkaMessage,
} from "./kafka-sink";
export { CompressionCodecs, CompressionTypes } from "./kafkajs-codecs";
export { type KafkaTlsFiles, readTlsFiles } from "./tls-files";
