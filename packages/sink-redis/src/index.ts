export {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_REFRESH_AHEAD_MS,
  type ParsedRedisUrl,
  parseRedisUrl,
  type RedisClusterConfig,
  type RedisConnectionOptions,
  type RedisCredentials,
} from "./redis-connection";
export { isRetriableRedisError, RedisSinkError, safeRedisMessage } from "./redis-errors";
export {
  type DeadLetterReason,
  type ReaderStartFrom,
  type RedisEventHandler,
  type RedisEventMessage,
  RedisEventReader,
  type RedisEventReaderOptions,
  type RedisEventReaderStats,
} from "./redis-event-reader";
export { DEFAULT_MAX_LEN, EVENT_FIELD, RedisSink, type RedisSinkOptions } from "./redis-sink";
export {
  clusterKeySlot,
  compileStreamKey,
  DEFAULT_CLUSTER_STREAM,
  DEFAULT_STREAM,
  hashTagOf,
  type StreamKeyResolver,
  type StreamKeyTemplate,
} from "./stream-key";
