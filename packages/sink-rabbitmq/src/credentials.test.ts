import type { Credentials, StreamllEvent } from "@streamll/core";
import { DeliveryPipeline } from "@streamll/core";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BROKER_HOST,
  createVhost,
  deleteVhost,
  rabbitmqctl,
  skipWithoutBroker,
  vhostUrl,
  waitUntil,
} from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQSink } from "./rabbitmq-sink";

describe.skipIf(skipWithoutBroker)("token credentials against a real broker", () => {
  let vhost: string;
  const user = `streamll_rot_${testId().replace(/[^A-Za-z0-9]/g, "x")}`;

  beforeAll(async () => {
    vhost = await createVhost("streamll_creds");
  });

  afterAll(async () => {
    await rabbitmqctl("delete_user", user).catch(() => {});
    if (vhost) await deleteVhost(vhost);
  });

  it("after ACCESS_REFUSED the sink fetches a fresh credential instead of retrying the cached stale one", async () => {
    const rotated = `streamll_stale_${testId().replace(/[^A-Za-z0-9]/g, "x")}`;
    const first = `stale-${testId()}`;
    const second = `fresh-${testId()}`;
    await rabbitmqctl("add_user", rotated, first);
    try {
      await rabbitmqctl("set_permissions", "-p", vhost, rotated, ".*", ".*", ".*");
      let current = first;
      let fetches = 0;
      // No expiresAt: the cache would keep serving the first password for good; only ACCESS_REFUSED refreshes it.
      const provider = async (): Promise<Credentials> => {
        fetches += 1;
        return { username: rotated, password: current };
      };
      const logs: string[] = [];
      const queue = `q_${testId()}`;
      const sink = new RabbitMQSink({
        hostname: BROKER_HOST,
        vhost,
        credentials: provider,
        logger: { warn: (message) => logs.push(message) },
        queue: { name: queue },
        reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
      });
      const pipeline = new DeliveryPipeline(
        sink,
        {
          flushIntervalMs: 10,
          retry: { initialDelayMs: 20, maxDelayMs: 200 },
          circuitBreaker: { resetTimeoutMs: 100 },
        },
        { logger: { warn: (message) => logs.push(message) } },
      );
      try {
        await sink.connect();
        expect(fetches).toBe(1);
        await rabbitmqctl("change_password", rotated, second);
        current = second;
        await rabbitmqctl("close_all_connections", "-p", vhost, "streamll stale credential test");
        const events = Array.from({ length: 50 }, () => makeEvent());
        for (const event of events) pipeline.enqueue(encoded(event));
        expect(await pipeline.flush(15_000)).toBe(true);
        expect(pipeline.getMetrics()).toMatchObject({ emitted: 50, delivered: 50, dropped: 0, pending: 0 });
        expect(sink.getStats().reconnects).toBe(1);
        expect(fetches).toBe(2);
        expect(logs.join("\n")).toMatch(/ACCESS.REFUSED/);
        expect(logs.join("\n")).not.toContain(first);
        expect(logs.join("\n")).not.toContain(second);
      } finally {
        await pipeline.shutdown(5_000);
      }
    } finally {
      await rabbitmqctl("delete_user", rotated).catch(() => {});
    }
  });

  it("RabbitMQ 3.10.8 accepts update-secret for an internal user without checking the secret (documented)", async () => {
    const connection = await amqp.connect(vhostUrl(vhost));
    try {
      await connection.updateSecret(Buffer.from("not-the-password", "utf8"), "streamll doc check");
      const channel = await connection.createChannel();
      await channel.checkExchange("amq.topic");
    } finally {
      await connection.close();
    }
  });

  it("rotates the password while events flow: live connection re-authenticated, new connections use the fresh secret, nothing lost", async () => {
    const first = `first-${testId()}`;
    const second = `second-${testId()}`;
    await rabbitmqctl("add_user", user, first);
    await rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*");

    let current = first;
    let fetches = 0;
    const provider = async (): Promise<Credentials> => {
      fetches += 1;
      // A short lifetime makes the cache refresh (and update-secret run) within the test.
      return { username: user, password: current, expiresAt: Date.now() + 3_000 };
    };
    const logs: string[] = [];
    const queue = `q_${testId()}`;
    const sink = new RabbitMQSink({
      hostname: BROKER_HOST,
      vhost,
      credentials: provider,
      logger: { warn: (message) => logs.push(message) },
      queue: { name: queue },
      reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    });
    const pipeline = new DeliveryPipeline(
      sink,
      {
        flushIntervalMs: 10,
        retry: { initialDelayMs: 20, maxDelayMs: 200 },
        circuitBreaker: { resetTimeoutMs: 100 },
      },
      { logger: { warn: (message) => logs.push(message) } },
    );
    const events: StreamllEvent[] = [];
    const emit = (count: number): void => {
      for (let i = 0; i < count; i += 1) {
        const event = makeEvent();
        events.push(event);
        pipeline.enqueue(encoded(event));
      }
    };

    try {
      emit(100);
      expect(await pipeline.flush(5_000)).toBe(true);
      // The cache refreshes before expiry and pushes the token to the live connection (update-secret).
      await waitUntil(() => sink.getStats().secretUpdates >= 1, 10_000, "update-secret");
      expect(sink.getStats().reconnects).toBe(0);

      // Rotate: the broker accepts only the new password from now on; the provider hands it out.
      await rabbitmqctl("change_password", user, second);
      current = second;
      emit(100);
      let closed = false;
      const closing = rabbitmqctl("close_all_connections", "-p", vhost, "streamll rotation test").then(() => {
        closed = true;
      });
      while (!closed || sink.getStats().reconnects < 1) {
        emit(20);
        await new Promise((resolve) => setTimeout(resolve, 25));
        if (events.length > 20_000) break;
      }
      await closing;
      emit(100);
      expect(await pipeline.flush(15_000)).toBe(true);

      expect(pipeline.getMetrics()).toMatchObject({
        emitted: events.length,
        delivered: events.length,
        dropped: 0,
        pending: 0,
      });
      expect(sink.getStats().reconnects).toBeGreaterThanOrEqual(1);
      expect(sink.getStats().connected).toBe(true);
      expect(fetches).toBeGreaterThanOrEqual(2);
      // The old password is dead, so the live connection can only be using the fresh one.
      await expect(amqp.connect(vhostUrl(vhost, user, first))).rejects.toThrow(/ACCESS.REFUSED/);

      const check = await amqp.connect(vhostUrl(vhost));
      const channel = await check.createChannel();
      const { messageCount } = await channel.checkQueue(queue);
      await check.close();
      expect(messageCount).toBeGreaterThanOrEqual(events.length);

      const visible = [
        ...logs,
        pipeline.getMetrics().lastError?.message ?? "",
        sink.getStats().blocked ?? "",
      ].join("\n");
      expect(visible).not.toContain(first);
      expect(visible).not.toContain(second);
    } finally {
      await pipeline.shutdown(5_000);
    }
  });
});
