import { AsyncLocalStorage } from "node:async_hooks";
import type { StreamllEvent } from "@streamll/core";
import { ConfigurationError, decodeEvent, StreamllError } from "@streamll/core";
import { isConfigurationError, v, validateOptions } from "@streamll/core/internal";
import type { Channel, ConsumeMessage } from "amqplib";
import {
  CLOSE_TIMEOUT_MS,
  ConnectionManager,
  consoleLogger,
  type RabbitMQLogger,
  safeLogger,
  settleWithin,
} from "./connection-manager";
import {
  amqpNameSchema,
  type RabbitMQConnectionOptions,
  rabbitMQConnectionOptionsSchema,
  validateConnectionUrl,
} from "./connection-options";
import {
  DEFAULT_EXCHANGE,
  declareQueue,
  type RabbitMQQueueOptions,
  rabbitMQLoggerSchema,
  rabbitMQQueueOptionsSchema,
} from "./rabbitmq-sink";

/** Where rejected messages go. */
export interface RabbitMQDeadLetterOptions {
  /** Dead-letter exchange (declared as a durable topic exchange). Default `<queue>.dlx`. */
  exchange?: string;
  /** Queue bound to the dead-letter exchange with `#`, so dead letters are kept. Default `<queue>.dead`. */
  queue?: string;
}

/** Options of `RabbitMQEventReader`. */
export interface RabbitMQEventReaderOptions extends RabbitMQConnectionOptions {
  /** The durable queue to consume, as a name or with bindings, type and arguments. */
  queue: string | RabbitMQQueueOptions;
  /** Exchange the queue is bound to. Default `streamll_events`. */
  exchange?: string;
  /**
   * Declare the exchange, the queue (with `x-dead-letter-exchange`), its bindings and the dead-letter
   * exchange and queue on every (re)connection. Default `true`. With `false` everything must exist already and
   * dead-lettering follows whatever the queue's arguments or policies say.
   */
  declare?: boolean;
  /**
   * Dead-lettering of malformed and repeatedly failing messages. Default: exchange `<queue>.dlx` and queue
   * `<queue>.dead`. `false` declares no dead-letter exchange: rejected messages are discarded by the broker
   * (still counted in `getStats().deadLettered`).
   */
  deadLetter?: RabbitMQDeadLetterOptions | false;
  /** Unacknowledged messages the broker sends ahead (basic.qos). Default 32. Keep it low on CloudAMQP shared plans. */
  prefetch?: number;
  /** Deliveries of one message (first one included) before a failing handler sends it to the dead letters. Default 5. */
  maxAttempts?: number;
  /** Wait before returning a failed message to the queue for another attempt. Default 1 000 ms. */
  retryDelayMs?: number;
  /** Receives connection state changes and setup problems. Default `console.warn`. */
  logger?: RabbitMQLogger;
}

/** One received event. */
export interface ReceivedEvent {
  /** The event, validated against the streamll schema. */
  readonly event: StreamllEvent;
  readonly routingKey: string;
  readonly exchange: string;
  /** The broker delivered this message before (to this or another consumer). */
  readonly redelivered: boolean;
  /**
   * 1 for the first delivery. From the broker's `x-delivery-count` header on quorum queues; on classic queues
   * from this reader's own count of failed attempts (which starts again after a restart of the reader).
   */
  readonly attempt: number;
}

/** Handles one event; throwing (or rejecting) counts as a failed attempt. */
export type EventHandler = (received: ReceivedEvent) => unknown;

/** Counters of one reader. */
export interface RabbitMQEventReaderStats {
  /** Messages delivered by the broker. */
  readonly received: number;
  /** Messages acknowledged after the handler succeeded. */
  readonly acked: number;
  /** Failed attempts returned to the queue for another try. */
  readonly retried: number;
  /** Messages rejected to the dead-letter exchange (malformed or out of attempts). */
  readonly deadLettered: number;
  /** Of those, messages that were not valid streamll events. */
  readonly malformed: number;
  /** Handler calls that threw or rejected. */
  readonly handlerErrors: number;
  /** Connections re-established after a loss. */
  readonly reconnects: number;
  /**
   * Prefetched messages not yet handled when the reader stopped, handed back to the queue (by closing the
   * channel) for the other consumers to take at once.
   */
  readonly released: number;
}

interface Delivery {
  readonly message: ConsumeMessage;
  readonly channel: Channel;
}

/** One handler call of `run()`: `stop()` called inside it must not wait for it. */
interface HandlerCall {
  readonly reader: RabbitMQEventReader;
  returned: boolean;
}

/** The handler call the current code runs in (also in what it started, hence `returned`). */
const handlerCalls = new AsyncLocalStorage<HandlerCall>();

/** `RabbitMQEventReaderOptions` as the constructor checks them. */
export const rabbitMQEventReaderOptionsSchema =
  rabbitMQConnectionOptionsSchema.extend<RabbitMQEventReaderOptions>({
    queue: v.union(amqpNameSchema, rabbitMQQueueOptionsSchema),
    exchange: amqpNameSchema.optional(),
    declare: v.boolean().optional(),
    deadLetter: v
      .union(
        v.oneOf([false]),
        v.object<RabbitMQDeadLetterOptions>({
          exchange: amqpNameSchema.optional(),
          queue: amqpNameSchema.optional(),
        }),
      )
      .optional(),
    prefetch: v.integer({ min: 1, max: 65_535 }).optional(),
    maxAttempts: v.integer({ min: 1 }).optional(),
    retryDelayMs: v.integer({ min: 0 }).optional(),
    logger: rabbitMQLoggerSchema.optional(),
  });

const MAX_TRACKED_FAILURES = 10_000;
const SETUP_RETRY_MAX_MS = 30_000;

function amqpCode(error: unknown): number | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "number") return code;
  }
  return undefined;
}

/** The message of a permanent error with its fix (the install command, the setting to change) when not in it. */
function describeFailure(error: Error): string {
  const fix = (error as { fix?: unknown }).fix;
  return typeof fix === "string" && fix !== "" && !error.message.includes(fix)
    ? `${error.message}. Fix: ${fix}`
    : error.message;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Consumes streamll events from a durable queue bound to the events exchange. Each message is validated
 * against the event schema and acknowledged only after the handler succeeded; malformed messages and messages
 * that failed `maxAttempts` times are rejected to a dead-letter exchange. Messages are handled one at a time, in
 * queue order. Reconnects with backoff after a connection loss (unacknowledged messages are redelivered by the
 * broker). Use `run(handler)` or `for await (const received of reader)`.
 */
export class RabbitMQEventReader implements AsyncIterable<ReceivedEvent> {
  readonly #queue: RabbitMQQueueOptions;
  readonly #exchange: string;
  readonly #declare: boolean;
  readonly #deadLetter: { exchange: string; queue: string | undefined } | undefined;
  readonly #prefetch: number;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  readonly #logger: RabbitMQLogger;
  readonly #manager: ConnectionManager;
  readonly #stopController = new AbortController();
  readonly #inbox: Delivery[] = [];
  readonly #failures = new Map<string, number>();
  readonly #stats = {
    received: 0,
    acked: 0,
    retried: 0,
    deadLettered: 0,
    malformed: 0,
    handlerErrors: 0,
    released: 0,
  };

  #started = false;
  #stopPromise: Promise<void> | null = null;
  #maintainPromise: Promise<void> | null = null;
  #channel: Channel | null = null;
  #wake: (() => void) | null = null;
  #fatal: Error | null = null;
  #readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #isReady = false;
  #inFlight: Promise<void> | null = null;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: RabbitMQEventReaderOptions) {
    validateOptions("RabbitMQEventReader", rabbitMQEventReaderOptionsSchema, options);
    validateConnectionUrl(options);
    const queue: RabbitMQQueueOptions =
      typeof options.queue === "string" ? { name: options.queue } : options.queue;
    this.#queue = queue;
    this.#exchange = options.exchange ?? DEFAULT_EXCHANGE;
    this.#declare = options.declare ?? true;
    this.#deadLetter =
      options.deadLetter === false
        ? undefined
        : {
            exchange: options.deadLetter?.exchange ?? `${queue.name}.dlx`,
            queue: options.deadLetter?.queue ?? `${queue.name}.dead`,
          };
    this.#prefetch = options.prefetch ?? 32;
    this.#maxAttempts = options.maxAttempts ?? 5;
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#logger = safeLogger(options.logger ?? consoleLogger);
    this.#manager = new ConnectionManager(options, {
      keepProcessAlive: true,
      label: `RabbitMQ reader ${queue.name}`,
      logger: this.#logger,
    });
  }

  /** Counters since construction. */
  getStats(): RabbitMQEventReaderStats {
    return { ...this.#stats, reconnects: this.#manager.reconnects };
  }

  /**
   * Resolves once the queue is declared, bound and consumed (after `run` or iteration started). Rejects when
   * the setup failed for good (e.g. PRECONDITION_FAILED, ACCESS_REFUSED on a declaration), the broker refused
   * the login for good (see `run()`), or the reader stopped.
   */
  ready(): Promise<void> {
    if (this.#isReady) return Promise.resolve();
    if (this.#fatal) return Promise.reject(this.#fatal);
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /**
   * Handles events one at a time until `stop()` is called. Resolves after the reader stopped; rejects with a
   * `ConfigurationError` (logged once) when the queue setup failed for good or connecting never can: the
   * credential provider's optional SDK is not installed, or the broker refused the login (ACCESS_REFUSED)
   * before any connection succeeded (with `credentials`, also for a credential fetched fresh after the first
   * refusal). A login refused after the reader was connected once is retried with backoff, each attempt with
   * a fresh credential. A handler that throws gets the message again after `retryDelayMs`, up to
   * `maxAttempts` deliveries, after which the message is dead-lettered.
   */
  async run(handler: EventHandler): Promise<void> {
    this.#start();
    try {
      for (;;) {
        const delivery = await this.#next();
        if (!delivery) break;
        // Started a microtask later, so that a stop() called while the handler starts already sees it in flight.
        const handled = Promise.resolve().then(() => this.#handle(delivery, handler));
        this.#inFlight = handled;
        await handled;
        this.#inFlight = null;
      }
    } finally {
      this.#inFlight = null;
      await this.stop();
    }
    if (this.#fatal) throw this.#fatal;
  }

  /**
   * Iterates over events. A message is acknowledged when the loop asks for the next one. Leaving the loop
   * (`break`, `return` or an exception) stops the reader, and the message being processed goes back to the
   * queue (it is redelivered later), so use `run()` when a handler failure should be retried and
   * dead-lettered per message.
   */
  [Symbol.asyncIterator](): AsyncIterator<ReceivedEvent> {
    this.#start();
    let current: Delivery | null = null;
    return {
      next: async (): Promise<IteratorResult<ReceivedEvent>> => {
        if (current) {
          this.#ack(current);
          current = null;
        }
        for (;;) {
          const delivery = await this.#next();
          if (!delivery) {
            await this.stop();
            if (this.#fatal) throw this.#fatal;
            return { done: true, value: undefined };
          }
          const received = this.#decode(delivery);
          if (!received) continue;
          current = delivery;
          return { done: false, value: received };
        }
      },
      return: async (): Promise<IteratorResult<ReceivedEvent>> => {
        if (current) {
          this.#settle(current, "requeue");
          current = null;
        }
        await this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Stops consuming: no new message is handled, the handler running now finishes (and its message is
   * acknowledged), prefetched messages go back to the queue (counted in `getStats().released`), and the
   * connection closes. Resolves once the connection is closed. Called from inside a `run()` handler it only
   * requests the stop (the handler is what it would wait for) and resolves at once: when the handler returns,
   * its message is acknowledged and `run()` resolves once the reader has stopped.
   */
  stop(): Promise<void> {
    const call = handlerCalls.getStore();
    if (call?.reader === this && !call.returned && !this.#stopPromise) {
      // Waiting here would wait for this very handler, which waits for stop(): run() shuts down after it.
      this.#stopController.abort();
      this.#wake?.();
      return Promise.resolve();
    }
    if (!this.#stopPromise) this.#stopPromise = this.#shutdown();
    return this.#stopPromise;
  }

  async #shutdown(): Promise<void> {
    this.#stopController.abort();
    this.#wake?.();
    const channel = this.#channel;
    if (this.#inFlight) await this.#inFlight.catch(() => {});
    if (this.#maintainPromise) await this.#maintainPromise.catch(() => {});
    this.#channel = null;
    // Closing the channel returns every unacknowledged (prefetched) message to the queue.
    if (channel) await settleWithin(channel.close(), CLOSE_TIMEOUT_MS);
    // Those not handed to the handler yet are released; deliveries of lost channels were redelivered anyway.
    if (channel)
      this.#stats.released += this.#inbox.filter((delivery) => delivery.channel === channel).length;
    this.#inbox.length = 0;
    await this.#manager.close();
    const error = this.#fatal ?? new StreamllError("SINK_CLOSED", "the reader stopped");
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
  }

  #start(): void {
    if (this.#started) {
      throw new ConfigurationError(
        "RabbitMQEventReader: run() or iteration already started; create another reader",
        [{ path: "reader", message: "already started" }],
      );
    }
    this.#started = true;
    this.#maintainPromise = this.#maintain();
  }

  async #next(): Promise<Delivery | null> {
    for (;;) {
      if (this.#stopController.signal.aborted || this.#fatal) return null;
      const delivery = this.#inbox.shift();
      if (delivery) {
        if (delivery.channel === this.#channel) return delivery;
        // Its channel is gone; the broker redelivers the message on the new one.
        continue;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = null;
    }
  }

  /** Keeps one consuming channel open, across connection losses, until stopped. */
  async #maintain(): Promise<void> {
    const signal = this.#stopController.signal;
    let setupFailures = 0;
    while (!signal.aborted) {
      let model: Awaited<ReturnType<ConnectionManager["waitForConnection"]>>;
      try {
        model = await this.#manager.waitForConnection(signal);
      } catch (error) {
        // Otherwise the reader was stopped. A ConfigurationError (the credential provider's SDK is not
        // installed, a login the broker refuses for good) fails every attempt alike: run() rejects with it
        // instead of retrying without end.
        if (isConfigurationError(error) && !signal.aborted) this.#failPermanently(error);
        return;
      }
      let channel: Channel | undefined;
      let channelError: unknown;
      try {
        channel = await model.createChannel();
        const current = channel;
        current.on("error", (error: Error) => {
          channelError = error;
        });
        const closed = new Promise<void>((resolve) => current.once("close", () => resolve()));
        await this.#setup(current);
        await current.consume(
          this.#queue.name,
          (message) => {
            if (message === null) {
              // The broker cancelled the consumer (queue deleted): set up again.
              current.close().catch(() => {});
              return;
            }
            this.#stats.received += 1;
            this.#inbox.push({ message, channel: current });
            this.#wake?.();
          },
          { noAck: false },
        );
        this.#channel = current;
        setupFailures = 0;
        this.#markReady();
        // The abort listener is removed again, or every reconnection would leave one behind on the signal.
        let onAbort: (() => void) | undefined;
        await Promise.race([
          closed,
          new Promise<void>((resolve) => {
            onAbort = resolve;
            signal.addEventListener("abort", onAbort, { once: true });
          }),
        ]);
        if (onAbort) signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        if (this.#channel === current) this.#channel = null;
        this.#wake?.();
      } catch (error) {
        const cause = channelError ?? error;
        const code = amqpCode(cause);
        if (channel) await channel.close().catch(() => {});
        if (signal.aborted) return;
        const safe = this.#manager.sanitize(cause, `setting up queue "${this.#queue.name}" failed`);
        if (code === 403 || code === 404 || code === 406) {
          // Permission, missing exchange/queue or an inequivalent redeclaration: retrying cannot fix it.
          this.#failPermanently(
            new ConfigurationError(safe.message, [{ path: "queue", message: safe.message }], { cause: safe }),
          );
          return;
        }
        setupFailures += 1;
        this.#logger.warn(`RabbitMQ reader ${this.#queue.name}: ${safe.message}; retrying`);
        await sleep(Math.min(SETUP_RETRY_MAX_MS, 250 * 2 ** (setupFailures - 1)), signal);
      }
    }
  }

  /**
   * Ends the reader with `error`, reported once on the logger (with the fix): run() and iteration reject with it
   * once they wake, and so does ready().
   */
  #failPermanently(error: Error): void {
    this.#logger.warn(
      `RabbitMQ reader ${this.#queue.name} failed permanently: ${this.#manager.redact(describeFailure(error))}`,
    );
    this.#fatal = error;
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
    this.#wake?.();
  }

  async #setup(channel: Channel): Promise<void> {
    await channel.prefetch(this.#prefetch);
    if (!this.#declare) return;
    await channel.assertExchange(this.#exchange, "topic", { durable: true });
    const extra: Record<string, unknown> = {};
    if (this.#deadLetter) {
      await channel.assertExchange(this.#deadLetter.exchange, "topic", { durable: true });
      if (this.#deadLetter.queue !== undefined) {
        await channel.assertQueue(this.#deadLetter.queue, { durable: true });
        await channel.bindQueue(this.#deadLetter.queue, this.#deadLetter.exchange, "#");
      }
      extra["x-dead-letter-exchange"] = this.#deadLetter.exchange;
    }
    await declareQueue(channel, this.#exchange, this.#queue, extra);
  }

  #markReady(): void {
    this.#isReady = true;
    for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve();
  }

  #decode(delivery: Delivery): ReceivedEvent | null {
    const decoded = decodeEvent(delivery.message.content);
    if (!decoded.ok) {
      this.#stats.malformed += 1;
      this.#settle(delivery, "dead-letter");
      return null;
    }
    const { fields, properties } = delivery.message;
    const failures = this.#failures.get(decoded.event.event_id) ?? 0;
    const brokerCount: unknown = properties.headers?.["x-delivery-count"];
    const fromBroker = typeof brokerCount === "number" ? brokerCount + 1 : 1;
    return {
      event: decoded.event,
      routingKey: fields.routingKey,
      exchange: fields.exchange,
      redelivered: fields.redelivered,
      attempt: Math.max(fromBroker, failures + 1),
    };
  }

  async #handle(delivery: Delivery, handler: EventHandler): Promise<void> {
    const received = this.#decode(delivery);
    if (!received) return;
    const call: HandlerCall = { reader: this, returned: false };
    try {
      await handlerCalls.run(call, () => handler(received));
    } catch {
      call.returned = true;
      // The handler's error is its own business: it is counted, never logged with the event's data.
      this.#stats.handlerErrors += 1;
      const id = received.event.event_id;
      if (received.attempt >= this.#maxAttempts) {
        this.#failures.delete(id);
        this.#settle(delivery, "dead-letter");
        return;
      }
      this.#failures.delete(id);
      this.#failures.set(id, received.attempt);
      if (this.#failures.size > MAX_TRACKED_FAILURES) {
        const oldest = this.#failures.keys().next().value;
        if (oldest !== undefined) this.#failures.delete(oldest);
      }
      await sleep(this.#retryDelayMs, this.#stopController.signal);
      this.#settle(delivery, "requeue");
      this.#stats.retried += 1;
      return;
    }
    call.returned = true;
    this.#failures.delete(received.event.event_id);
    this.#ack(delivery);
  }

  #ack(delivery: Delivery): void {
    if (delivery.channel !== this.#channel) return;
    try {
      delivery.channel.ack(delivery.message);
      this.#stats.acked += 1;
    } catch {
      // The channel closed meanwhile: the broker redelivers the message.
    }
  }

  #settle(delivery: Delivery, how: "requeue" | "dead-letter"): void {
    if (delivery.channel !== this.#channel) return;
    try {
      delivery.channel.nack(delivery.message, false, how === "requeue");
      if (how === "dead-letter") this.#stats.deadLettered += 1;
    } catch {
      // The channel closed meanwhile: the broker redelivers the message.
    }
  }
}
