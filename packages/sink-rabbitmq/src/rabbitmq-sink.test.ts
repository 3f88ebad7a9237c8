import { inspect } from "node:util";
import type { EncodedEvent, SendResult } from "@streamll/core";
import { ConfigurationError, DeliveryPipeline, SinkError } from "@streamll/core";
import type { Channel, ChannelModel, GetMessage } from "amqplib";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createVhost,
  deleteVhost,
  rabbitmqctl,
  skipWithoutBroker,
  socketsOpenedBy,
  vhostUrl,
} from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { PUBLISH_CHUNK_SIZE, RabbitMQSink } from "./rabbitmq-sink";

const quiet = { warn: () => {} };

function send(sink: RabbitMQSink, batch: readonly EncodedEvent[]): Promise<SendResult | undefined> {
  return sink.send(batch, { signal: new AbortController().signal, attempt: 1 });
}

describe("RabbitMQSink options", () => {
  it("rejects invalid options at construction with the option's path", () => {
    const cases: [ConstructorParameters<typeof RabbitMQSink>[0], string][] = [
      [{ exchange: "" }, "exchange"],
      [{ queue: { name: "" } }, "queue.name"],
      [{ queue: { name: "q", bindingKeys: [] } }, "queue.bindingKeys"],
      [{ queue: { name: "q", type: "stream" as "quorum" } }, "queue.type"],
      [{ whenBlocked: "block" as "wait" }, "whenBlocked"],
      [{ routingKey: "streamll.{module}" }, "routingKey"],
      [{ heartbeatSeconds: -1 }, "heartbeatSeconds"],
    ];
    for (const [options, path] of cases) {
      const error = (() => {
        try {
          new RabbitMQSink({ ...options, logger: quiet });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, path).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues[0]?.path).toBe(path);
    }
  });

  it("rejects unknown (misspelt) option keys instead of silently keeping the default", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ exchnage: "events" }, "exchnage"],
      [{ queue: { name: "q", bindingKey: ["#"] } }, "queue.bindingKey"],
      [{ reconnect: { initialDelay: 10 } }, "reconnect.initialDelay"],
    ];
    for (const [options, path] of cases) {
      const error = (() => {
        try {
          new RabbitMQSink({ ...(options as ConstructorParameters<typeof RabbitMQSink>[0]), logger: quiet });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, path).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues.map((issue) => issue.path)).toEqual([path]);
      expect((error as Error).message).toContain(path);
    }
  });

  it("names itself after the exchange and exposes the routing key", () => {
    const sink = new RabbitMQSink({ exchange: "events", logger: quiet });
    expect(sink.name).toBe("rabbitmq:events");
    expect(sink.routingKeyFor(makeEvent({ module_name: "a.b", event_type: "end" }))).toBe("streamll.a_b.end");
    const custom = new RabbitMQSink({ routingKey: (event) => `custom.${event.event_type}`, logger: quiet });
    expect(custom.routingKeyFor(makeEvent({ event_type: "token" }))).toBe("custom.token");
  });
});

describe.skipIf(skipWithoutBroker)("RabbitMQSink against a real broker", () => {
  let vhost: string;
  let url: string;
  let admin: ChannelModel;
  let channel: Channel;
  const sinks: RabbitMQSink[] = [];

  function newSink(options: ConstructorParameters<typeof RabbitMQSink>[0] = {}): RabbitMQSink {
    const sink = new RabbitMQSink({ url, logger: quiet, exchange: `x_${testId()}`, ...options });
    sinks.push(sink);
    return sink;
  }

  async function declare(queue: string, exchange: string, ...keys: string[]): Promise<void> {
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    for (const key of keys) await channel.bindQueue(queue, exchange, key);
  }

  async function take(queue: string, expected: number, timeoutMs = 5_000): Promise<GetMessage[]> {
    const messages: GetMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    while (messages.length < expected && Date.now() < deadline) {
      const message = await channel.get(queue, { noAck: true });
      if (message) messages.push(message);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return messages;
  }

  beforeAll(async () => {
    vhost = await createVhost();
    url = vhostUrl(vhost);
    admin = await amqp.connect(url);
    channel = await admin.createChannel();
  });

  afterAll(async () => {
    await Promise.all(sinks.map((sink) => sink.close()));
    await admin?.close().catch(() => {});
    if (vhost) await deleteVhost(vhost);
  });

  it("round-trips every event type with persistent JSON messages, headers and ids", async () => {
    const queue = `q_${testId()}`;
    const sink = newSink({ queue: { name: queue } });
    const types = ["start", "end", "error", "token", "version", "retrieval.step"];
    const events = types.map((event_type) =>
      makeEvent({ event_type, module_name: "RAG", data: { text: "héllo ✓", n: 1, nested: { ok: true } } }),
    );
    expect(await send(sink, events.map(encoded))).toBeUndefined();
    const messages = await take(queue, events.length);
    expect(messages).toHaveLength(events.length);
    messages.forEach((message, i) => {
      const event = events[i]!;
      expect(JSON.parse(message.content.toString("utf8"))).toEqual(event);
      expect(message.fields.routingKey).toBe(`streamll.RAG.${event.event_type.replace(".", "_")}`);
      expect(message.properties.contentType).toBe("application/json");
      expect(message.properties.deliveryMode).toBe(2);
      expect(message.properties.messageId).toBe(event.event_id);
      expect(message.properties.type).toBe(event.event_type);
      expect(message.properties.timestamp).toBe(Math.floor(Date.parse(event.timestamp) / 1000));
      expect(message.properties.headers).toMatchObject({
        schema_version: "1.0",
        event_type: event.event_type,
        module_name: "RAG",
      });
    });
    expect(sink.getStats()).toMatchObject({ published: 6, confirmed: 6, unroutable: 0, connected: true });
  });

  it("declares the default exchange streamll_events as a durable topic exchange; heartbeat 30 s and frame_max 131072 are negotiated", async () => {
    const connectionName = `streamll-defaults-${testId()}`;
    // No `exchange` option: the default applies (newSink sets one, so construct directly).
    const sink = new RabbitMQSink({ url, logger: quiet, mandatory: false, connectionName });
    sinks.push(sink);
    await sink.connect();
    const exchanges = await rabbitmqctl("list_exchanges", "-p", vhost, "name", "type", "durable");
    expect(exchanges).toMatch(/^streamll_events\ttopic\ttrue$/m);
    const connections = await rabbitmqctl(
      "list_connections",
      "vhost",
      "timeout",
      "frame_max",
      "client_properties",
    );
    const line = connections.split("\n").find((l) => l.includes(`"${connectionName}"`));
    expect(line?.split("\t").slice(0, 3)).toEqual([vhost, "30", "131072"]);
    expect(await send(sink, [encoded(makeEvent())])).toBeUndefined();
  });

  it("a throwing routingKey function drops only that event (rejected), the rest of the batch is delivered once", async () => {
    const exchange = `x_${testId()}`;
    const queue = `q_${testId()}`;
    await declare(queue, exchange, "#");
    const sink = newSink({
      exchange,
      routingKey: (event) => {
        if (event.module_name === "Bad") throw new Error("no key for you");
        return `streamll.${event.module_name}`;
      },
    });
    const batch = [
      makeEvent({ module_name: "A" }),
      makeEvent({ module_name: "Bad" }),
      makeEvent({ module_name: "C" }),
    ];
    const result = await send(sink, batch.map(encoded));
    expect(result?.failures.map((f) => [f.index, f.retriable])).toEqual([[1, false]]);
    expect(result?.failures[0]?.error).toBeInstanceOf(SinkError);
    expect(String((result?.failures[0]?.error as Error | undefined)?.message)).toMatch(
      /routingKey function threw/,
    );
    expect(sink.getStats()).toMatchObject({ published: 2, confirmed: 2, unconfirmed: 0 });
    const ids = (await take(queue, 2)).map((m) => m.properties.messageId);
    expect(ids).toEqual([batch[0]!.event_id, batch[2]!.event_id]);
    // Nothing else arrives (no duplicate from a retried batch).
    expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 0 });

    const pipeline = new DeliveryPipeline(sink, { flushIntervalMs: 5 }, { logger: quiet });
    pipeline.enqueue(encoded(makeEvent({ module_name: "Bad" })));
    pipeline.enqueue(encoded(makeEvent({ module_name: "A" })));
    expect(await pipeline.flush(5_000)).toBe(true);
    expect(pipeline.getMetrics()).toMatchObject({
      emitted: 2,
      delivered: 1,
      dropped: 1,
      pending: 0,
      retried: 0,
    });
    expect(pipeline.getMetrics().droppedByReason.rejected).toBe(1);
    await pipeline.shutdown(5_000);
  });

  it("routes by module and event type to different queues", async () => {
    const exchange = `x_${testId()}`;
    const [byModule, errors, everything] = [`q_${testId()}`, `q_${testId()}`, `q_${testId()}`];
    await declare(byModule, exchange, "streamll.RAG.*");
    await declare(errors, exchange, "streamll.*.error");
    await declare(everything, exchange, "streamll.#");
    const sink = newSink({ exchange });
    const batch = [
      makeEvent({ module_name: "RAG", event_type: "start" }),
      makeEvent({ module_name: "Summarizer", event_type: "error" }),
      makeEvent({ module_name: "RAG", event_type: "error" }),
      makeEvent({ module_name: "Summarizer", event_type: "token" }),
    ];
    expect(await send(sink, batch.map(encoded))).toBeUndefined();
    const ids = async (queue: string, n: number) =>
      (await take(queue, n)).map((m) => m.properties.messageId as string);
    expect(await ids(byModule, 2)).toEqual([batch[0]!.event_id, batch[2]!.event_id]);
    expect(await ids(errors, 2)).toEqual([batch[1]!.event_id, batch[2]!.event_id]);
    expect(await ids(everything, 4)).toHaveLength(4);
  });

  it("a module name with dots or wildcards cannot change routing", async () => {
    const exchange = `x_${testId()}`;
    const [starts, hijack] = [`q_${testId()}`, `q_${testId()}`];
    await declare(starts, exchange, "streamll.*.start");
    await declare(hijack, exchange, "streamll.evil.#");
    const sink = newSink({ exchange });
    const event = makeEvent({ module_name: "evil.#", event_type: "start" });
    expect(await send(sink, [encoded(event)])).toBeUndefined();
    const [message] = await take(starts, 1);
    expect(message?.fields.routingKey).toBe("streamll.evil__.start");
    expect(await channel.checkQueue(hijack)).toMatchObject({ messageCount: 0 });
  });

  it("keeps events in order through the delivery pipeline", async () => {
    const queue = `q_${testId()}`;
    const sink = newSink({ queue: { name: queue, type: "classic" } });
    const pipeline = new DeliveryPipeline(sink, { maxBatchSize: 50, flushIntervalMs: 5 }, { logger: quiet });
    const events = Array.from({ length: 500 }, (_, i) => makeEvent({ event_type: "token", data: { i } }));
    for (const event of events) pipeline.enqueue(encoded(event));
    expect(await pipeline.flush(10_000)).toBe(true);
    const messages = await take(queue, events.length);
    expect(messages.map((m) => m.properties.messageId)).toEqual(events.map((e) => e.event_id));
    expect(pipeline.getMetrics()).toMatchObject({ emitted: 500, delivered: 500, dropped: 0, pending: 0 });
    await pipeline.shutdown(5_000);
  });

  it("publishes a large batch in chunks of PUBLISH_CHUNK_SIZE, one event-loop turn apart, in order and confirmed", async () => {
    const queue = `q_${testId()}`;
    const sink = newSink({ queue: { name: queue } });
    await sink.connect();
    // A ticker that runs once per event-loop turn records how many messages had been published by then.
    const seen: number[] = [];
    let ticking = true;
    const tick = () => {
      seen.push(sink.getStats().published);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const events = Array.from({ length: 200 }, (_, i) => makeEvent({ event_type: "token", data: { i } }));
    expect(await send(sink, events.map(encoded))).toBeUndefined();
    ticking = false;
    // No turn saw more than one chunk published: the other work of the process ran between the chunks.
    for (let i = 1; i < seen.length; i++) {
      expect((seen[i] ?? 0) - (seen[i - 1] ?? 0)).toBeLessThanOrEqual(PUBLISH_CHUNK_SIZE);
    }
    expect(new Set(seen.filter((n) => n > 0 && n < 200)).size).toBeGreaterThanOrEqual(
      Math.ceil(200 / PUBLISH_CHUNK_SIZE) - 2,
    );
    expect(sink.getStats()).toMatchObject({ published: 200, confirmed: 200 });
    const messages = await take(queue, events.length);
    expect(messages.map((m) => m.properties.messageId)).toEqual(events.map((e) => e.event_id));
  });

  it("a channel lost between chunks fails the unpublished rest of the batch retriably, once each", async () => {
    const queue = `q_${testId()}`;
    const sink = newSink({ queue: { name: queue } });
    await sink.connect();
    const events = Array.from({ length: 10 * PUBLISH_CHUNK_SIZE }, (_, i) =>
      makeEvent({ event_type: "token", data: { i } }),
    );
    const sending = send(sink, events.map(encoded));
    // After the first chunk went out, the connection goes away under the sink.
    await new Promise((resolve) => setImmediate(resolve));
    const published = sink.getStats().published;
    expect(published).toBeGreaterThan(0);
    expect(published).toBeLessThan(events.length);
    await sink.close();
    const result = await sending;
    const failed = result?.failures ?? [];
    // Every event not confirmed is a retriable failure, listed once; the pipeline retries exactly those.
    expect(new Set(failed.map((f) => f.index)).size).toBe(failed.length);
    expect(failed.length).toBeGreaterThanOrEqual(events.length - published);
    expect(failed.every((f) => f.retriable)).toBe(true);
    expect(sink.getStats().published).toBeLessThan(events.length);
  });

  it("detects unroutable events and drops them as rejected, keeping accounting exact", async () => {
    const exchange = `x_${testId()}`;
    const routed = `q_${testId()}`;
    await declare(routed, exchange, "streamll.Bound.*");
    const sink = newSink({ exchange });
    const batch = [
      makeEvent({ module_name: "Bound" }),
      makeEvent({ module_name: "Nowhere" }),
      makeEvent({ module_name: "Bound" }),
      makeEvent({ module_name: "Nowhere" }),
    ];
    const result = await send(sink, batch.map(encoded));
    expect(result?.failures.map((f) => [f.index, f.retriable])).toEqual([
      [1, false],
      [3, false],
    ]);
    const failure = result?.failures[0]?.error;
    expect(failure).toBeInstanceOf(SinkError);
    expect((failure as SinkError).message).toContain("streamll.Nowhere.start");
    expect(sink.getStats()).toMatchObject({ confirmed: 2, unroutable: 2 });

    const pipeline = new DeliveryPipeline(sink, { flushIntervalMs: 5 }, { logger: quiet });
    for (let i = 0; i < 5; i += 1) pipeline.enqueue(encoded(makeEvent({ module_name: "Nowhere" })));
    pipeline.enqueue(encoded(makeEvent({ module_name: "Bound" })));
    expect(await pipeline.flush(5_000)).toBe(true);
    const metrics = pipeline.getMetrics();
    expect(metrics).toMatchObject({ emitted: 6, delivered: 1, dropped: 5, pending: 0 });
    expect(metrics.droppedByReason.rejected).toBe(5);
    expect(sink.getStats().unroutable).toBe(7);
    await pipeline.shutdown(5_000);
  });

  it("with mandatory: false the broker discards unroutable events silently", async () => {
    const sink = newSink({ mandatory: false });
    expect(await send(sink, [encoded(makeEvent())])).toBeUndefined();
    expect(sink.getStats()).toMatchObject({ confirmed: 1, unroutable: 0 });
  });

  it("turns broker nacks into retriable per-event failures", async () => {
    const queue = `q_${testId()}`;
    // A full queue with reject-publish makes the broker nack further messages.
    const sink = newSink({
      queue: { name: queue, arguments: { "x-max-length": 1, "x-overflow": "reject-publish" } },
    });
    const result = await send(sink, [makeEvent(), makeEvent(), makeEvent()].map(encoded));
    expect(result?.failures.map((f) => [f.index, f.retriable])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(sink.getStats()).toMatchObject({ confirmed: 1, nacked: 2 });
  });

  it("declares a quorum queue when asked", async () => {
    const queue = `q_${testId()}`;
    const sink = newSink({ queue: { name: queue, type: "quorum", bindingKeys: ["streamll.#"] } });
    await sink.connect();
    expect(await send(sink, [encoded(makeEvent())])).toBeUndefined();
    expect((await take(queue, 1)).length).toBe(1);
  });

  it("surfaces PRECONDITION_FAILED when a queue is redeclared with other arguments", async () => {
    const queue = `q_${testId()}`;
    await channel.assertQueue(queue, { durable: true, arguments: { "x-max-length": 10 } });
    const sink = newSink({ queue: { name: queue } });
    const error = await sink.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as Error).message).toMatch(/PRECONDITION_FAILED/);
    expect((error as SinkError).retriable).toBe(true);
  });

  it("refused logins report ACCESS_REFUSED without the password", async () => {
    const sink = newSink({ url: vhostUrl(vhost, "guest", "not-the-Pa55word") });
    const error = await sink.connect().catch((e: unknown) => e);
    // Refused before any connection succeeded, with a fixed password: no retry can fix it (login-refused.test.ts).
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).issues[0]?.path).toBe("url");
    expect((error as Error).message).toMatch(/ACCESS.REFUSED/);
    expect((error as Error).message).not.toContain("not-the-Pa55word");
    expect((error as ConfigurationError).fix).not.toContain("not-the-Pa55word");
    expect(String((error as Error).cause)).not.toContain("not-the-Pa55word");
    expect(inspect(error, { depth: 5 })).not.toContain("not-the-Pa55word");
    expect(inspect(sink, { depth: 5, showHidden: true })).not.toContain("not-the-Pa55word");
  });

  it("fails fast and retriably while the broker is unreachable", async () => {
    const sink = newSink({
      url: "amqp://guest:s3cret-value@127.0.0.1:1/",
      reconnect: { initialDelayMs: 60_000 },
    });
    const first = await send(sink, [encoded(makeEvent())]).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(SinkError);
    expect((first as SinkError).retriable).toBe(true);
    let second: unknown;
    // No connection attempt (no socket) is made while the reconnection is scheduled: the send fails at once.
    const sockets = await socketsOpenedBy(async () => {
      second = await send(sink, [encoded(makeEvent())]).catch((e: unknown) => e);
    });
    expect(sockets).toHaveLength(0);
    expect(second).toBeInstanceOf(SinkError);
    expect((second as SinkError).retriable).toBe(true);
    expect((second as Error).message).toMatch(
      /not connected to amqp:\/\/127\.0\.0\.1:1\/ \(next attempt in \d+ ms/,
    );
    for (const error of [first, second])
      expect(String((error as Error).message)).not.toContain("s3cret-value");
  });

  it("a closed sink rejects sends as non-retriable and close is idempotent", async () => {
    const sink = newSink();
    await sink.connect();
    await sink.close();
    await sink.close();
    const error = await send(sink, [encoded(makeEvent())]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "SINK_CLOSED", retriable: false });
    expect(sink.getStats().connected).toBe(false);
  });
});
