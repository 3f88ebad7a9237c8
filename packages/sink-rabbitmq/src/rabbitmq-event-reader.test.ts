import type { StreamllEvent } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";
import type { Channel, ChannelModel, GetMessage } from "amqplib";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settles } from "../../../test-support/settles.mjs";
import {
  createVhost,
  deleteVhost,
  rabbitmqctl,
  skipWithoutBroker,
  vhostUrl,
  waitUntil,
} from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import {
  RabbitMQEventReader,
  type RabbitMQEventReaderOptions,
  type ReceivedEvent,
} from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const quiet = { warn: () => {} };

describe("RabbitMQEventReader options", () => {
  it("rejects invalid options at construction with the option's path", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, "queue"],
      [{ queue: "" }, "queue"],
      [{ queue: { name: "" } }, "queue.name"],
      [{ queue: "q", prefetch: 0 }, "prefetch"],
      [{ queue: "q", maxAttempts: 0 }, "maxAttempts"],
      [{ queue: "q", retryDelayMs: -1 }, "retryDelayMs"],
      [{ queue: "q", prefech: 10 }, "prefech"],
      [{ queue: "q", deadLetter: { exchnage: "x" } }, "deadLetter.exchnage"],
    ];
    for (const [options, path] of cases) {
      const error = (() => {
        try {
          new RabbitMQEventReader({ ...(options as unknown as RabbitMQEventReaderOptions), logger: quiet });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, path).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues[0]?.path, path).toBe(path);
    }
  });
});

describe.skipIf(skipWithoutBroker)("RabbitMQEventReader against a real broker", () => {
  let vhost: string;
  let url: string;
  let admin: ChannelModel;
  let channel: Channel;
  let sink: RabbitMQSink;
  const exchange = "streamll_events";
  const readers: RabbitMQEventReader[] = [];

  function newReader(options: Omit<RabbitMQEventReaderOptions, "url">): RabbitMQEventReader {
    const reader = new RabbitMQEventReader({ url, logger: quiet, retryDelayMs: 10, ...options });
    readers.push(reader);
    return reader;
  }

  async function publish(...events: StreamllEvent[]): Promise<void> {
    const result = await sink.send(events.map(encoded), { signal: new AbortController().signal, attempt: 1 });
    expect(result).toBeUndefined();
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
    sink = new RabbitMQSink({ url, logger: quiet, exchange });
  });

  afterAll(async () => {
    await Promise.all(readers.map((reader) => reader.stop()));
    await sink?.close();
    await admin?.close().catch(() => {});
    if (vhost) await deleteVhost(vhost);
  });

  it("acknowledges only after the handler succeeded", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.Ack.*"] } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    const running = reader.run(async ({ event }) => {
      seen.push(event.event_id);
      await gate;
    });
    await reader.ready();
    const event = makeEvent({ module_name: "Ack" });
    await publish(event);
    await waitUntil(() => seen.length === 1, 5_000, "delivery");
    const during = await rabbitmqctl("list_queues", "-p", vhost, "name", "messages_unacknowledged");
    expect(during).toMatch(new RegExp(`${queue}\\s+1`));
    release();
    await waitUntil(() => reader.getStats().acked === 1, 5_000, "ack");
    await reader.stop();
    await running;
    expect(seen).toEqual([event.event_id]);
    expect(await channel.checkQueue(queue)).toMatchObject({ messageCount: 0 });
  });

  it("the broker sends at most `prefetch` unacknowledged messages ahead", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.Prefetch.*"] }, prefetch: 3 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let handled = 0;
    const running = reader.run(async () => {
      handled += 1;
      await gate;
    });
    await reader.ready();
    await publish(...Array.from({ length: 10 }, () => makeEvent({ module_name: "Prefetch" })));
    const counts = async () =>
      (await rabbitmqctl("list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged"))
        .split("\n")
        .find((line) => line.startsWith(`${queue}\t`));
    await waitUntil(async () => (await counts()) === `${queue}\t7\t3`, 5_000, "3 unacked, 7 ready");
    await waitUntil(() => reader.getStats().received === 3, 5_000, "3 deliveries");
    expect(handled).toBe(1);
    release();
    await waitUntil(() => reader.getStats().acked === 10, 5_000, "all acked");
    await reader.stop();
    await running;
  });

  it("retries a failing handler, then succeeds", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.Retry.*"] }, maxAttempts: 5 });
    const attempts: number[] = [];
    const running = reader.run(({ attempt }) => {
      attempts.push(attempt);
      if (attempts.length < 3) throw new Error("transient");
    });
    await reader.ready();
    await publish(makeEvent({ module_name: "Retry" }));
    await waitUntil(() => reader.getStats().acked === 1, 5_000, "ack after retries");
    expect(attempts).toEqual([1, 2, 3]);
    expect(reader.getStats()).toMatchObject({ received: 3, retried: 2, handlerErrors: 2, deadLettered: 0 });
    await reader.stop();
    await running;
  });

  it("dead-letters a message after maxAttempts failures", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.Fail.*"] }, maxAttempts: 3 });
    const running = reader.run(() => {
      throw new Error("permanent");
    });
    await reader.ready();
    const event = makeEvent({ module_name: "Fail" });
    await publish(event);
    const [dead] = await take(`${queue}.dead`, 1);
    expect(dead?.properties.messageId).toBe(event.event_id);
    expect(dead?.properties.headers?.["x-death"]?.[0]).toMatchObject({ reason: "rejected", queue });
    expect(reader.getStats()).toMatchObject({
      received: 3,
      retried: 2,
      deadLettered: 1,
      acked: 0,
      malformed: 0,
    });
    await reader.stop();
    await running;
  });

  it("uses the broker's x-delivery-count on quorum queues", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({
      queue: { name: queue, type: "quorum", bindingKeys: ["streamll.Quorum.*"] },
      maxAttempts: 2,
    });
    const attempts: number[] = [];
    const running = reader.run(({ attempt }) => {
      attempts.push(attempt);
      throw new Error("always");
    });
    await reader.ready();
    await publish(makeEvent({ module_name: "Quorum" }));
    expect(await take(`${queue}.dead`, 1)).toHaveLength(1);
    expect(attempts).toEqual([1, 2]);
    await reader.stop();
    await running;
  });

  it("dead-letters malformed messages without calling the handler", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["bad.#", "streamll.Good.*"] } });
    const handled: string[] = [];
    const running = reader.run(({ event }) => {
      handled.push(event.event_id);
    });
    await reader.ready();
    channel.publish(exchange, "bad.json", Buffer.from("{not json"));
    channel.publish(exchange, "bad.schema", Buffer.from(JSON.stringify({ event_type: "start" })));
    const good = makeEvent({ module_name: "Good" });
    await publish(good);
    await waitUntil(() => handled.length === 1 && reader.getStats().malformed === 2, 5_000, "malformed");
    expect(handled).toEqual([good.event_id]);
    const dead = await take(`${queue}.dead`, 2);
    expect(dead.map((m) => m.fields.routingKey).sort()).toEqual(["bad.json", "bad.schema"]);
    expect(reader.getStats()).toMatchObject({ malformed: 2, deadLettered: 2, acked: 1 });
    await reader.stop();
    await running;
  });

  it("with deadLetter: false, malformed messages are discarded by the broker and still counted", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["nodlx.#"] }, deadLetter: false });
    const running = reader.run(() => {});
    await reader.ready();
    channel.publish(exchange, "nodlx.bad", Buffer.from("{not json"));
    await waitUntil(() => reader.getStats().deadLettered === 1, 5_000, "rejection");
    expect(reader.getStats()).toMatchObject({ received: 1, malformed: 1, deadLettered: 1, acked: 0 });
    await waitUntil(async () => (await channel.checkQueue(queue)).messageCount === 0, 5_000, "empty queue");
    const exchanges = await rabbitmqctl("list_exchanges", "-p", vhost, "name");
    expect(exchanges).not.toContain(`${queue}.dlx`);
    await reader.stop();
    await running;
  });

  it("iterates in order; leaving the loop returns the current message to the queue", async () => {
    const queue = `q_${testId()}`;
    const first = newReader({ queue: { name: queue, bindingKeys: ["streamll.Iter.*"] } });
    const ready = first.ready();
    const events = [1, 2, 3].map((i) => makeEvent({ module_name: "Iter", data: { i } }));
    const received: ReceivedEvent[] = [];
    const loop = (async () => {
      for await (const item of first) {
        received.push(item);
        if (received.length === 3) break;
      }
    })();
    await ready;
    await publish(...events);
    await loop;
    expect(received.map((r) => r.event.event_id)).toEqual(events.map((e) => e.event_id));
    expect(first.getStats().acked).toBe(2);

    const second = newReader({ queue: { name: queue, bindingKeys: ["streamll.Iter.*"] } });
    const again: ReceivedEvent[] = [];
    const running = second.run((item) => {
      again.push(item);
    });
    await waitUntil(() => again.length === 1, 5_000, "redelivery");
    expect(again[0]?.event.event_id).toBe(events[2]!.event_id);
    expect(again[0]?.redelivered).toBe(true);
    await second.stop();
    await running;
  });

  it("stop() lets the running handler finish and acknowledges its message", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.Stop.*"] } });
    let started = false;
    let finished = false;
    const running = reader.run(async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 200));
      finished = true;
    });
    await reader.ready();
    await publish(makeEvent({ module_name: "Stop" }), makeEvent({ module_name: "Stop" }));
    await waitUntil(() => started && reader.getStats().received === 2, 5_000, "handler start");
    await reader.stop();
    await running;
    expect(finished).toBe(true);
    expect(reader.getStats()).toMatchObject({ acked: 1, released: 1 });
    // The prefetched second message went back to the queue.
    await waitUntil(async () => (await channel.checkQueue(queue)).messageCount === 1, 5_000, "requeue");
  });

  it("stop() awaited inside a run() handler only requests the stop: its message is acknowledged, run() resolves", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({ queue: { name: queue, bindingKeys: ["streamll.StopInside.*"] } });
    const handled: string[] = [];
    let stopReturned = false;
    const running = reader.run(async ({ event }) => {
      handled.push(event.event_id);
      // All five are prefetched before the stop, so what is handed back is known.
      if (handled.length === 1) await waitUntil(() => reader.getStats().received === 5, 5_000, "prefetch");
      if (handled.length === 2) {
        await reader.stop();
        stopReturned = true;
      }
    });
    await reader.ready();
    const events = [1, 2, 3, 4, 5].map((i) => makeEvent({ module_name: "StopInside", data: { i } }));
    await publish(...events);
    expect(await settles(running)).toBe("settled");
    await running;
    expect(stopReturned).toBe(true);
    expect(handled).toEqual(events.slice(0, 2).map((e) => e.event_id));
    expect(reader.getStats()).toMatchObject({ acked: 2, released: 3, handlerErrors: 0 });
    // The two handled messages are acknowledged, the three prefetched ones are back in the queue.
    await waitUntil(async () => (await channel.checkQueue(queue)).messageCount === 3, 5_000, "requeue");
    expect(await settles(reader.stop())).toBe("settled");
  });

  it("reconnects after the broker closes its connection", async () => {
    const queue = `q_${testId()}`;
    const reader = newReader({
      queue: { name: queue, bindingKeys: ["streamll.Reconnect.*"] },
      reconnect: { initialDelayMs: 50 },
    });
    const handled: string[] = [];
    const running = reader.run(({ event }) => {
      handled.push(event.event_id);
    });
    await reader.ready();
    await publish(makeEvent({ module_name: "Reconnect" }));
    await waitUntil(() => handled.length === 1, 5_000, "first event");
    await rabbitmqctl("close_all_connections", "-p", vhost, "streamll reader reconnect test");
    // The test's own connections in this vhost are closed too: reopen them.
    admin = await amqp.connect(url);
    channel = await admin.createChannel();
    await waitUntil(() => reader.getStats().reconnects >= 1, 10_000, "reconnect");
    const after = makeEvent({ module_name: "Reconnect" });
    for (let i = 0; i < 50 && !handled.includes(after.event_id); i += 1) {
      const result = await sink
        .send([encoded(after)], { signal: new AbortController().signal, attempt: i + 1 })
        .catch(() => "retry");
      if (result === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitUntil(() => handled.includes(after.event_id), 10_000, "event after reconnect");
    await reader.stop();
    await running;
  });

  it("rejects run() when the queue exists with other arguments (PRECONDITION_FAILED)", async () => {
    const queue = `q_${testId()}`;
    await channel.assertQueue(queue, { durable: true });
    const reader = newReader({ queue });
    const error = await reader.run(() => {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/PRECONDITION_FAILED/);
  });
});
