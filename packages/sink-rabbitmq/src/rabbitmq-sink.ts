import type { EncodedEvent, EventFailure, EventRoute, SendContext, SendResult, Sink } from "@streamll/core";
import { SinkError } from "@streamll/core";
import { nearestName, ProcessHold, v, validateOptions } from "@streamll/core/internal";
import type { ChannelModel, ConfirmChannel, Message, Options } from "amqplib";
import {
  abortableSend,
  CLOSE_TIMEOUT_MS,
  ConnectionManager,
  consoleLogger,
  type RabbitMQLogger,
  settleWithin,
} from "./connection-manager";
import {
  amqpNameSchema,
  type RabbitMQConnectionOptions,
  rabbitMQConnectionOptionsSchema,
  validateConnectionUrl,
} from "./connection-options";
import { compileRoutingKey, DEFAULT_ROUTING_KEY_TEMPLATE } from "./routing-key";

/** The exchange the sink publishes to unless told otherwise. */
export const DEFAULT_EXCHANGE = "streamll_events";

/** RabbitMQ queue types a declared queue may request. */
export type RabbitMQQueueType = "classic" | "quorum";

/** A queue the sink (or reader) declares and binds to the exchange, so events have somewhere to go. */
export interface RabbitMQQueueOptions {
  /** Queue name. The queue is durable. */
  name: string;
  /** Binding keys (topic patterns: `*` one word, `#` zero or more words). Default `["#"]`: every event. */
  bindingKeys?: readonly string[];
  /**
   * Sent as `x-queue-type`. Omitted by default, which gives the broker's default type: classic on a self-hosted
   * RabbitMQ with default settings, quorum on Amazon MQ for RabbitMQ 4.2+. Redeclaring an existing queue with
   * a different type fails with PRECONDITION_FAILED, so set this to match a queue created elsewhere.
   */
  type?: RabbitMQQueueType;
  /** Extra queue arguments (`x-max-length`, `x-message-ttl`, `x-dead-letter-exchange`, ...). */
  arguments?: Readonly<Record<string, unknown>>;
}

/** What the sink does while the broker blocks publishing (memory or disk alarm). */
export type BlockedPolicy = "fail" | "wait";

/** Options of `RabbitMQSink`. Every field is optional; the defaults publish to a local broker. */
export interface RabbitMQSinkOptions extends RabbitMQConnectionOptions {
  /** Shown in metrics. Default `rabbitmq:<exchange>`. */
  name?: string;
  /** Durable topic exchange to publish to. Default `streamll_events`. */
  exchange?: string;
  /**
   * Declare the exchange (durable, type topic) on every new connection. Default `true`. Set `false` when the
   * exchange is managed elsewhere and the user has no configure permission; publishing to a missing exchange
   * then fails (retriably) with NOT_FOUND.
   */
  declareExchange?: boolean;
  /**
   * Routing key template or function. Default `streamll.{module_name}.{event_type}`. Template placeholders:
   * `{module_name}`, `{method_name}`, `{event_type}`, `{operation}`, `{execution_id}`, `{span_id}`,
   * `{schema_version}`, `{tags.NAME}`; each value has `.`, `*`, `#` and whitespace replaced by `_` so it stays
   * one word. A function receives the event's routing fields (`EventRoute`: ids, names, type, operation,
   * timestamp, tags; not `data`, which sinks do not parse) and its result is used as is (cut to 255 bytes).
   */
  routingKey?: string | ((event: EventRoute) => string);
  /**
   * Publish with `mandatory` so the broker returns events no queue is bound for. Default `true`. Returned
   * events are dropped as `rejected` (non-retriable, counted in `getStats().unroutable`). With `false` the
   * broker discards them silently and they count as delivered.
   */
  mandatory?: boolean;
  /** Declare and bind a queue on every new connection. */
  queue?: RabbitMQQueueOptions;
  /**
   * While the broker blocks the connection: `fail` (default) fails each `send` at once with a retriable error,
   * so events wait in the pipeline's bounded queue and the circuit breaker paces retries; `wait` holds the
   * send until the broker unblocks or the pipeline's send timeout aborts it.
   */
  whenBlocked?: BlockedPolicy;
  /** Persistent messages (delivery mode 2) survive a broker restart in durable queues. Default `true`. */
  persistent?: boolean;
  /** Receives connection state changes (lost, restored, blocked). Default `console.warn`. */
  logger?: RabbitMQLogger;
}

/** Counters of one sink. Use the pipeline's `getMetrics()` for delivery accounting. */
export interface RabbitMQSinkStats {
  /** Messages written to the channel. */
  readonly published: number;
  /** Messages the broker confirmed (ack) and routed to at least one queue. */
  readonly confirmed: number;
  /** Messages the broker refused (nack); they are retried. */
  readonly nacked: number;
  /** Messages the broker returned because no queue matched; dropped as `rejected`. */
  readonly unroutable: number;
  /** Messages whose channel closed before the confirm arrived; they are retried. */
  readonly unconfirmed: number;
  /** Connections re-established after a loss. */
  readonly reconnects: number;
  /** Refreshed credentials pushed to a live connection with `update-secret` and accepted by the broker. */
  readonly secretUpdates: number;
  readonly connected: boolean;
  /** The broker's reason while it blocks publishing, else `null`. */
  readonly blocked: string | null;
}

interface MutableStats {
  published: number;
  confirmed: number;
  nacked: number;
  unroutable: number;
  unconfirmed: number;
}

/** Declares the queue and its bindings; shared with the reader. */
export async function declareQueue(
  channel: ConfirmChannel | import("amqplib").Channel,
  exchange: string,
  queue: RabbitMQQueueOptions,
  extraArguments: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const args: Record<string, unknown> = { ...extraArguments, ...queue.arguments };
  if (queue.type !== undefined) args["x-queue-type"] = queue.type;
  await channel.assertQueue(queue.name, { durable: true, arguments: args });
  for (const key of queue.bindingKeys ?? ["#"]) {
    await channel.bindQueue(queue.name, exchange, key);
  }
}

/**
 * The queue arguments RabbitMQ itself reads (classic, quorum and stream queues). The broker accepts any other
 * `x-` key and applies nothing, so a key that is a near miss of one of these (`x-max-lenght`) is rejected with
 * the one it meant; keys far from all of them (a plugin's) are passed on unchecked.
 */
const KNOWN_QUEUE_ARGUMENTS: readonly string[] = [
  "x-max-length",
  "x-max-length-bytes",
  "x-overflow",
  "x-message-ttl",
  "x-expires",
  "x-dead-letter-exchange",
  "x-dead-letter-routing-key",
  "x-dead-letter-strategy",
  "x-max-priority",
  "x-queue-mode",
  "x-queue-type",
  "x-queue-version",
  "x-queue-master-locator",
  "x-queue-leader-locator",
  "x-single-active-consumer",
  "x-delivery-limit",
  "x-max-in-memory-length",
  "x-max-in-memory-bytes",
  "x-quorum-initial-group-size",
  "x-quorum-target-group-size",
  "x-initial-cluster-size",
  "x-max-age",
  "x-stream-max-segment-size-bytes",
  "x-stream-filter-size-bytes",
  "x-consumer-timeout",
];

/** `RabbitMQQueueOptions`, for the sink's and the reader's `queue`. */
export const rabbitMQQueueOptionsSchema = v.object<RabbitMQQueueOptions>({
  name: amqpNameSchema,
  bindingKeys: v
    .array(
      v.string().refine((value, report) => {
        if (Buffer.byteLength(value, "utf8") > 255) report("must be at most 255 bytes");
      }),
      { min: 1 },
    )
    .optional(),
  type: v.oneOf(["classic", "quorum"]).optional(),
  arguments: v
    .record(v.unchecked<unknown>("a queue argument value"))
    .refine((args, report) => {
      for (const key of Object.keys(args)) {
        if (KNOWN_QUEUE_ARGUMENTS.includes(key)) continue;
        const near = nearestName(key, KNOWN_QUEUE_ARGUMENTS);
        if (near !== undefined) {
          report(
            `unknown option; did you mean \`${near}\`? (allowed: the queue arguments RabbitMQ reads, ` +
              `${KNOWN_QUEUE_ARGUMENTS.join(", ")}, and keys unlike all of them, passed on unchecked)`,
            key,
          );
        }
      }
    })
    .optional(),
});

/**
 * Messages published per event-loop turn. amqplib encodes and writes each message on the event loop, so a
 * 512-event batch published at once held the host's loop for milliseconds; chunks one turn apart keep each
 * stretch short, and the batch still needs only one confirm round trip (bench/run.mjs records the loop delay).
 */
export const PUBLISH_CHUNK_SIZE = 16;

const loggerSchema = v.custom<RabbitMQLogger>(
  "an object with a warn() method",
  (value) => typeof (value as { warn?: unknown } | null)?.warn === "function",
);

/** `RabbitMQSinkOptions` as the constructor checks them. */
export const rabbitMQSinkOptionsSchema = rabbitMQConnectionOptionsSchema.extend<RabbitMQSinkOptions>({
  name: v.string({ min: 1 }).optional(),
  exchange: amqpNameSchema.optional(),
  declareExchange: v.boolean().optional(),
  routingKey: v
    .union(
      v.string({ min: 1, expected: "a routing key template" }),
      v.fn<(event: EventRoute) => string>("a function (event) => routing key"),
    )
    .optional(),
  mandatory: v.boolean().optional(),
  queue: rabbitMQQueueOptionsSchema.optional(),
  whenBlocked: v.oneOf(["fail", "wait"]).optional(),
  persistent: v.boolean().optional(),
  logger: loggerSchema.optional(),
});

export { loggerSchema as rabbitMQLoggerSchema };

/**
 * Publishes streamll events to a durable RabbitMQ topic exchange on a confirm channel. A batch counts as
 * delivered only once the broker confirmed every message; nacked and unconfirmed messages are reported as
 * retriable per-event failures, unroutable ones (mandatory publishing) as non-retriable ones. Connects lazily
 * and reconnects with backoff; while disconnected or blocked, `send` fails fast so events wait in the delivery
 * pipeline's bounded queue and the host is never blocked. A login the broker refuses before any connection
 * succeeded is not retried (see `connect()`): the pipeline marks the sink failed and reports it once.
 */
export class RabbitMQSink implements Sink {
  readonly name: string;
  readonly #exchange: string;
  readonly #declareExchange: boolean;
  readonly #routingKey: (event: EventRoute) => string;
  readonly #mandatory: boolean;
  readonly #persistent: boolean;
  readonly #queue: RabbitMQQueueOptions | undefined;
  readonly #whenBlocked: BlockedPolicy;
  readonly #manager: ConnectionManager;
  readonly #stats: MutableStats = { published: 0, confirmed: 0, nacked: 0, unroutable: 0, unconfirmed: 0 };
  /** Batches waiting for confirms, searched when the broker returns a message (rare, so no per-message index). */
  readonly #inFlight = new Set<InFlightBatch>();
  /**
   * The connection never holds the process (see `keepProcessAlive` below); a connect, send or close in flight
   * does, so whoever awaits one gets its answer even when it is a script's only work.
   */
  readonly #hold = new ProcessHold();

  #channel: ConfirmChannel | null = null;
  #channelModel: ChannelModel | null = null;
  #channelError: Error | null = null;
  #opening: Promise<ConfirmChannel> | null = null;
  #closed = false;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: RabbitMQSinkOptions = {}) {
    validateOptions("RabbitMQSink", rabbitMQSinkOptionsSchema, options);
    validateConnectionUrl(options);
    this.#exchange = options.exchange ?? DEFAULT_EXCHANGE;
    const routingKey = options.routingKey ?? DEFAULT_ROUTING_KEY_TEMPLATE;
    if (typeof routingKey === "function") {
      this.#routingKey = (event) => {
        const key = String(routingKey(event));
        return Buffer.byteLength(key, "utf8") <= 255
          ? key
          : Buffer.from(key, "utf8")
              .subarray(0, 255)
              .toString("utf8")
              .replace(/\uFFFD+$/, "");
      };
    } else {
      this.#routingKey = compileRoutingKey(routingKey);
    }
    this.name = options.name ?? `rabbitmq:${this.#exchange}`;
    this.#declareExchange = options.declareExchange ?? true;
    this.#mandatory = options.mandatory ?? true;
    this.#persistent = options.persistent ?? true;
    this.#queue = options.queue;
    this.#whenBlocked = options.whenBlocked ?? "fail";
    this.#manager = new ConnectionManager(options, {
      keepProcessAlive: false,
      label: `RabbitMQ sink ${this.name}`,
      logger: options.logger ?? consoleLogger,
    });
  }

  /** The routing key an event is published with. */
  routingKeyFor(event: EventRoute): string {
    return this.#routingKey(event);
  }

  /**
   * Connects and declares the exchange (and queue) now instead of at the first send. Optional; rejects with a
   * `SinkError` (secrets removed) when the broker is unreachable or refuses the declarations, and with a
   * `ConfigurationError` when the broker refuses the login for good (ACCESS_REFUSED before any connection
   * succeeded; with `credentials`, also for a credential fetched fresh after the first refusal): the sink then
   * fails every send with it.
   */
  async connect(): Promise<void> {
    await this.#hold.run(() => this.#getChannel());
  }

  /** Counters since construction. */
  getStats(): RabbitMQSinkStats {
    return {
      ...this.#stats,
      reconnects: this.#manager.reconnects,
      secretUpdates: this.#manager.secretUpdates,
      connected: this.#manager.connection !== null,
      blocked: this.#manager.blockedReason,
    };
  }

  async send(batch: readonly EncodedEvent[], context: SendContext): Promise<SendResult | undefined> {
    if (this.#closed) {
      throw new SinkError(`RabbitMQ sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    if (batch.length === 0) return undefined;
    return this.#hold.run(async () => {
      await this.#respectFlowControl(context.signal);
      const channel = await abortableSend(this.#getChannel(), context.signal, "opening the RabbitMQ channel");
      return this.#publish(channel, batch, context.signal);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#hold.run(() => this.#closeConnection());
  }

  async #closeConnection(): Promise<void> {
    if (this.#opening) {
      // A channel still opening waits on a connection attempt: ended at once, not left to its timeout.
      this.#manager.abortAttempt();
      await this.#opening.catch(() => {});
    }
    const channel = this.#channel;
    this.#channel = null;
    // A blocked connection never answers a channel close (the broker stops reading from it): skip it, closing
    // the connection releases the channel too. Otherwise bounded, for a peer that stopped answering.
    if (channel && this.#manager.blockedReason === null)
      await settleWithin(channel.close(), CLOSE_TIMEOUT_MS);
    await this.#manager.close();
  }

  async #respectFlowControl(signal: AbortSignal): Promise<void> {
    const reason = this.#manager.blockedReason;
    if (reason === null) return;
    if (this.#whenBlocked === "fail") {
      throw new SinkError(`RabbitMQ broker blocked publishing (${reason}); events stay queued`, {
        retriable: true,
      });
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        off();
        reject(
          new SinkError(`waiting for the broker to unblock publishing (${reason}) aborted`, {
            retriable: true,
            code: "SEND_TIMEOUT",
          }),
        );
      };
      const off = this.#manager.onBlockedChange((value) => {
        if (value !== null) return;
        off();
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  #getChannel(): Promise<ConfirmChannel> {
    const model = this.#manager.connection;
    if (this.#channel && model !== null && this.#channelModel === model)
      return Promise.resolve(this.#channel);
    if (this.#opening) return this.#opening;
    const opening = this.#openChannel().finally(() => {
      this.#opening = null;
    });
    this.#opening = opening;
    return opening;
  }

  async #openChannel(): Promise<ConfirmChannel> {
    const model = await this.#manager.acquire();
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (error) {
      throw this.#manager.sanitize(error, "cannot open a confirm channel");
    }
    this.#channelError = null;
    // Without an `error` listener a channel error (e.g. NOT_FOUND) would crash the host process.
    channel.on("error", (error: Error) => {
      this.#channelError = this.#manager.sanitize(error, "channel closed by the broker");
    });
    channel.on("close", () => {
      if (this.#channel === channel) this.#channel = null;
    });
    channel.on("return", (message: Message) => {
      const id: unknown = message.properties.messageId;
      if (typeof id !== "string") return;
      for (const inFlight of this.#inFlight) {
        if (inFlight.channel !== channel) continue;
        const index = inFlight.batch.findIndex(
          (encoded, i) => encoded.event_id === id && !inFlight.returned.has(i),
        );
        if (index >= 0) {
          inFlight.returned.add(index);
          return;
        }
      }
    });
    try {
      if (this.#declareExchange) await channel.assertExchange(this.#exchange, "topic", { durable: true });
      if (this.#queue) await declareQueue(channel, this.#exchange, this.#queue);
    } catch (error) {
      await channel.close().catch(() => {});
      throw this.#manager.sanitize(this.#channelError ?? error, "declaring the exchange or queue failed");
    }
    if (this.#closed) {
      await channel.close().catch(() => {});
      throw new SinkError(`RabbitMQ sink ${this.name} is closed`, { retriable: false, code: "SINK_CLOSED" });
    }
    this.#channel = channel;
    this.#channelModel = model;
    return channel;
  }

  #properties(event: EventRoute): Options.Publish {
    const millis = Date.parse(event.timestamp);
    const properties: Options.Publish = {
      persistent: this.#persistent,
      mandatory: this.#mandatory,
      contentType: "application/json",
      messageId: event.event_id,
      type: event.event_type,
      appId: "streamll",
      headers: {
        schema_version: event.schema_version,
        event_type: event.event_type,
        module_name: event.module_name,
      },
    };
    // AMQP timestamps are whole seconds since the epoch; the event keeps the precise time in its JSON.
    if (Number.isFinite(millis)) properties.timestamp = Math.floor(millis / 1000);
    return properties;
  }

  #publish(
    channel: ConfirmChannel,
    batch: readonly EncodedEvent[],
    signal: AbortSignal,
  ): Promise<SendResult | undefined> {
    return new Promise<SendResult | undefined>((resolve, reject) => {
      const count = batch.length;
      // undefined: waiting for the confirm; null: confirmed; otherwise why it failed.
      const outcome: (null | { error: unknown; retriable: boolean } | undefined)[] = new Array(count).fill(
        undefined,
      );
      const returned = new Set<number>();
      const keys: string[] = new Array(count).fill("");
      const inFlight: InFlightBatch = { batch, channel, returned };
      this.#inFlight.add(inFlight);
      let pending = count;
      let settled = false;

      const cleanup = (): void => {
        this.#inFlight.delete(inFlight);
        signal.removeEventListener("abort", onAbort);
        channel.removeListener("close", onClose);
      };
      const settle = (index: number, result: null | { error: unknown; retriable: boolean }): void => {
        if (outcome[index] !== undefined) return;
        outcome[index] = result;
        pending -= 1;
        if (pending === 0) finish();
      };
      const failPending = (error: unknown): void => {
        for (let i = 0; i < count; i += 1) {
          if (outcome[i] === undefined) {
            this.#stats.unconfirmed += 1;
            settle(i, { error, retriable: true });
          }
        }
      };
      const finish = (): void => {
        if (settled) return;
        settled = true;
        cleanup();
        const failures: EventFailure[] = [];
        for (let i = 0; i < count; i += 1) {
          const result = outcome[i];
          if (returned.has(i)) {
            this.#stats.unroutable += 1;
            const key = keys[i];
            failures.push({
              index: i,
              retriable: false,
              error: new SinkError(
                `unroutable: no queue is bound to exchange "${this.#exchange}" for routing key "${key}"`,
                { retriable: false },
              ),
            });
          } else if (result) {
            failures.push({ index: i, error: result.error, retriable: result.retriable });
          } else {
            this.#stats.confirmed += 1;
          }
        }
        resolve(failures.length > 0 ? { failures } : undefined);
      };
      const onClose = (): void => {
        failPending(
          this.#channelError ??
            new SinkError("RabbitMQ channel closed before the broker confirmed the message", {
              retriable: true,
            }),
        );
      };
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(
          new SinkError("waiting for RabbitMQ publisher confirms aborted", {
            retriable: true,
            code: "SEND_TIMEOUT",
          }),
        );
      };
      signal.addEventListener("abort", onAbort, { once: true });
      channel.on("close", onClose);

      // Publish the batch, then let the confirms arrive: one round trip per batch, not per message. Publishing
      // encodes and writes on the event loop (tens of µs per message), so the batch goes out in chunks of
      // PUBLISH_CHUNK_SIZE one loop turn apart: the host's timers and I/O run between them. Memory stays bounded
      // by the pipeline's batch byte limit, so the channel's write buffer is not awaited.
      const publishFrom = (first: number): void => {
        const end = Math.min(first + PUBLISH_CHUNK_SIZE, count);
        for (let i = first; i < end; i += 1) {
          const encoded = batch[i]!;
          let routingKey: string;
          try {
            routingKey = this.#routingKey(encoded);
          } catch (error) {
            // A throwing routing-key function fails the same way on every retry: drop this event (counted as
            // `rejected`) instead of failing, and then duplicating, the rest of the batch.
            const reason = error instanceof Error ? error.name : "error";
            settle(i, {
              error: new SinkError(`the routingKey function threw (${reason}); event not published`, {
                retriable: false,
              }),
              retriable: false,
            });
            continue;
          }
          keys[i] = routingKey;
          try {
            channel.publish(
              this.#exchange,
              routingKey,
              Buffer.from(encoded.json, "utf8"),
              this.#properties(encoded),
              (error: unknown) => {
                if (error) {
                  if (outcome[i] === undefined && !channelClosed(error)) this.#stats.nacked += 1;
                  else if (outcome[i] === undefined) this.#stats.unconfirmed += 1;
                  settle(i, {
                    error: channelClosed(error)
                      ? (this.#channelError ?? this.#manager.sanitize(error, "RabbitMQ channel closed"))
                      : new SinkError("RabbitMQ refused the message (nack)", { retriable: true }),
                    retriable: true,
                  });
                } else {
                  settle(i, null);
                }
              },
            );
            this.#stats.published += 1;
          } catch (error) {
            if (error instanceof RangeError) {
              // amqplib refuses this one message (its headers do not fit a frame): retrying cannot help.
              settle(i, {
                error: new SinkError(`message not publishable: ${error.message}`, { retriable: false }),
                retriable: false,
              });
            } else {
              // The channel is closed: nothing more can be written on it.
              failPending(this.#channelError ?? this.#manager.sanitize(error, "RabbitMQ channel unusable"));
              return;
            }
          }
        }
        // Stopped: aborted, or the channel closed (every unpublished event already failed).
        if (end < count && !settled && pending > 0) setImmediate(publishNext, end);
      };
      const publishNext = (first: number): void => {
        try {
          publishFrom(first);
        } catch (error) {
          // Outside the promise's executor now: whatever failed fails the rest of the batch, retriably.
          failPending(this.#manager.sanitize(error, "publishing to RabbitMQ failed"));
        }
      };
      publishFrom(0);
    });
  }
}

interface InFlightBatch {
  readonly batch: readonly EncodedEvent[];
  readonly channel: ConfirmChannel;
  /** Indexes the broker returned as unroutable (`basic.return` arrives before the message's confirm). */
  readonly returned: Set<number>;
}

function channelClosed(error: unknown): boolean {
  return error instanceof Error && /closed/i.test(error.message);
}
