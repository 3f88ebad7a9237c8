export type { RabbitMQLogger } from "./connection-manager";
export type { RabbitMQConnectionOptions, RabbitMQReconnectOptions } from "./connection-options";
export {
  type EventHandler,
  type RabbitMQDeadLetterOptions,
  RabbitMQEventReader,
  type RabbitMQEventReaderOptions,
  type RabbitMQEventReaderStats,
  type ReceivedEvent,
} from "./rabbitmq-event-reader";
export {
  type BlockedPolicy,
  DEFAULT_EXCHANGE,
  type RabbitMQQueueOptions,
  type RabbitMQQueueType,
  RabbitMQSink,
  type RabbitMQSinkOptions,
  type RabbitMQSinkStats,
} from "./rabbitmq-sink";
export {
  compileRoutingKey,
  DEFAULT_ROUTING_KEY_TEMPLATE,
  ROUTING_KEY_FIELDS,
  type RoutingKeyField,
  sanitizeRoutingKeyPart,
} from "./routing-key";
