// A login the broker refuses (ACCESS_REFUSED) before any connection succeeded cannot work as configured: with
// fixed credentials at once, with a credential provider once a credential fetched fresh after the first refusal
// is refused too. The sink then fails for good (reported once, with what to check) and a reader's run()
// rejects, instead of reconnecting without end. A refusal after a connection succeeded once (a password
// rotated on the broker, an authentication backend down) is still retried.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { inspect } from "node:util";
import type { Credentials } from "@streamll/core";
import { ConfigurationError, DeliveryPipeline, DIAGNOSTICS_CHANNEL, SinkError } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settles } from "../../../test-support/settles.mjs";
import {
  BROKER_HOST,
  createVhost,
  deleteVhost,
  rabbitmqctl,
  skipWithoutBroker,
  socketsOpenedBy,
  waitUntil,
} from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQEventReader } from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 40 };

describe.skipIf(skipWithoutBroker)("a login the broker refuses", () => {
  let vhost: string;
  const users: string[] = [];
  const password = `right-${testId()}`;
  const wrong = `wrong-${testId()}`;

  /** A user of the test's vhost with `password`; deleted after the suite. */
  async function newUser(): Promise<string> {
    const user = `streamll_refused_${testId().replace(/[^A-Za-z0-9]/g, "x")}`;
    users.push(user);
    await rabbitmqctl("add_user", user, password);
    await rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*");
    return user;
  }

  function collect() {
    const sinkLogs: string[] = [];
    const lines: string[] = [];
    const published: unknown[] = [];
    const onMessage = (message: unknown) => published.push(message);
    subscribe(DIAGNOSTICS_CHANNEL, onMessage);
    return {
      sinkLogs,
      lines,
      published,
      sinkLogger: { warn: (message: string) => sinkLogs.push(message) },
      pipelineLogger: {
        warn: (message: string) => lines.push(`warn ${message}`),
        error: (message: string) => lines.push(`error ${message}`),
      },
      stop: () => unsubscribe(DIAGNOSTICS_CHANNEL, onMessage),
    };
  }

  function pipelineFor(sink: RabbitMQSink, logger: ReturnType<typeof collect>["pipelineLogger"]) {
    return new DeliveryPipeline(
      sink,
      {
        flushIntervalMs: 5,
        retry: { initialDelayMs: 10, maxDelayMs: 50 },
        circuitBreaker: { resetTimeoutMs: 50 },
      },
      { logger },
    );
  }

  /**
   * The sink failed for good, reported once: `failed` in metrics (its message and fix as given), every event
   * dropped as `sink-failed`, one diagnostics message and one pipeline log line.
   */
  function expectFailedOnce(
    pipeline: DeliveryPipeline,
    sink: RabbitMQSink,
    seen: ReturnType<typeof collect>,
    expected: { events: number; message: RegExp; fix: string },
  ) {
    const metrics = pipeline.getMetrics();
    expect(metrics.failed).toMatchObject({
      code: "CONFIGURATION_INVALID",
      message: expect.stringMatching(expected.message),
      fix: expect.stringContaining(expected.fix),
    });
    expect(metrics.droppedByReason["sink-failed"]).toBe(expected.events);
    expect(metrics.pending).toBe(0);
    expect(seen.published).toEqual([
      expect.objectContaining({ type: "sink-failed", sink: sink.name, code: "CONFIGURATION_INVALID" }),
    ]);
    expect(seen.lines).toHaveLength(1);
    return metrics;
  }

  beforeAll(async () => {
    vhost = await createVhost("streamll_refused");
  });

  afterAll(async () => {
    for (const user of users) await rabbitmqctl("delete_user", user).catch(() => {});
    if (vhost) await deleteVhost(vhost);
  });

  it("with a fixed password: the sink fails for good at the first refusal, reported once with what to check", async () => {
    const user = await newUser();
    const seen = collect();
    const sink = new RabbitMQSink({
      hostname: BROKER_HOST,
      vhost,
      username: user,
      password: wrong,
      logger: seen.sinkLogger,
      reconnect: FAST_RECONNECT,
    });
    const pipeline = pipelineFor(sink, seen.pipelineLogger);
    try {
      const sockets = await socketsOpenedBy(async () => {
        for (let i = 0; i < 5; i++) pipeline.enqueue(encoded(makeEvent()));
        expect(await pipeline.flush(5_000)).toBe(true);
        pipeline.enqueue(encoded(makeEvent()));
        // Time for reconnects, had any been scheduled (10-40 ms apart).
        await sleep(300);
      });
      // One login attempt, no reconnects.
      expect(sockets).toHaveLength(1);
      const metrics = expectFailedOnce(pipeline, sink, seen, {
        events: 6,
        message: new RegExp(`ACCESS.REFUSED.*\\(user "${user}"\\)$`),
        fix: "rabbitmqctl list_users",
      });
      expect(metrics).toMatchObject({ retried: 0, breakerState: "closed" });
      expect(seen.lines[0]).toMatch(
        /failed permanently .*ACCESS.REFUSED.* Fix: check the user name and password/,
      );
      // The pipeline reports it; the sink's own logger does not repeat it.
      expect(seen.sinkLogs).toEqual([]);

      // connect() rejects with the same error, without trying again.
      const again = await socketsOpenedBy(async () => {
        const error = await sink.connect().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigurationError);
        expect((error as ConfigurationError).issues).toEqual([
          { path: "password", message: "login refused by the broker (ACCESS_REFUSED)" },
        ]);
        expect(inspect(error, { depth: 5 })).not.toContain(wrong);
      });
      expect(again).toHaveLength(0);
      const visible = [JSON.stringify(metrics), ...seen.lines, JSON.stringify(seen.published)].join("\n");
      expect(visible).not.toContain(wrong);
    } finally {
      seen.stop();
      await pipeline.shutdown(1_000);
    }
  });

  it("with a credential provider: a fresh credential is fetched once, and when it is refused too the sink fails for good", async () => {
    const user = await newUser();
    const seen = collect();
    let fetches = 0;
    const provider = async (): Promise<Credentials> => {
      fetches += 1;
      return { username: user, password: `${wrong}-${fetches}`, expiresAt: Date.now() + 3_600_000 };
    };
    const sink = new RabbitMQSink({
      hostname: BROKER_HOST,
      vhost,
      credentials: provider,
      logger: seen.sinkLogger,
      reconnect: FAST_RECONNECT,
    });
    const pipeline = pipelineFor(sink, seen.pipelineLogger);
    try {
      const sockets = await socketsOpenedBy(async () => {
        for (let i = 0; i < 5; i++) pipeline.enqueue(encoded(makeEvent()));
        await waitUntil(() => pipeline.getMetrics().failed !== null, 10_000, "the sink to fail");
        await sleep(300);
      });
      expect(fetches).toBe(2);
      expect(sockets).toHaveLength(2);
      const metrics = expectFailedOnce(pipeline, sink, seen, {
        events: 5,
        message: new RegExp(
          `ACCESS.REFUSED.*\\(user "${user}"; a credential fetched fresh from the credentials provider was refused too\\)$`,
        ),
        fix: "check what the credentials provider returns",
      });
      // The first refusal (of a credential that might have been stale) is logged; the permanent one is not.
      expect(seen.sinkLogs).toHaveLength(1);
      expect(seen.sinkLogs[0]).toMatch(/ACCESS.REFUSED/);
      const error = await sink.connect().catch((e: unknown) => e);
      expect((error as ConfigurationError).issues[0]?.path).toBe("credentials");
      const visible = [JSON.stringify(metrics), ...seen.lines, ...seen.sinkLogs, inspect(error)].join("\n");
      expect(visible).not.toContain(wrong);
    } finally {
      seen.stop();
      await pipeline.shutdown(1_000);
    }
  });

  it("after a connection succeeded once, a refused login is retried and delivery resumes once the broker accepts it again", async () => {
    const user = await newUser();
    const seen = collect();
    const sink = new RabbitMQSink({
      hostname: BROKER_HOST,
      vhost,
      username: user,
      password,
      logger: seen.sinkLogger,
      queue: { name: `q_${testId()}` },
      reconnect: FAST_RECONNECT,
    });
    const pipeline = pipelineFor(sink, seen.pipelineLogger);
    try {
      for (let i = 0; i < 10; i++) pipeline.enqueue(encoded(makeEvent()));
      expect(await pipeline.flush(5_000)).toBe(true);

      // The broker now refuses the sink's password (rotated there, or an authentication backend failing).
      await rabbitmqctl("change_password", user, `elsewhere-${testId()}`);
      await rabbitmqctl("close_all_connections", "-p", vhost, "streamll refused-login test");
      for (let i = 0; i < 10; i++) pipeline.enqueue(encoded(makeEvent()));
      await waitUntil(
        () => /ACCESS.REFUSED/.test(pipeline.getMetrics().lastError?.message ?? ""),
        10_000,
        "a refused reconnection",
      );
      await sleep(300);
      expect(pipeline.getMetrics()).toMatchObject({ failed: null, pending: 10 });
      const refused = await sink.connect().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SinkError);
      expect((refused as SinkError).retriable).toBe(true);

      await rabbitmqctl("change_password", user, password);
      expect(await pipeline.flush(15_000)).toBe(true);
      expect(pipeline.getMetrics()).toMatchObject({ emitted: 20, delivered: 20, dropped: 0, failed: null });
      expect(sink.getStats().reconnects).toBe(1);
      expect(seen.published).toEqual([]);
    } finally {
      seen.stop();
      await pipeline.shutdown(5_000);
    }
  });

  it("a reader with a wrong password: run() rejects with the ConfigurationError at once, logged once with the fix", async () => {
    const user = await newUser();
    const logs: string[] = [];
    const reader = new RabbitMQEventReader({
      hostname: BROKER_HOST,
      vhost,
      username: user,
      password: wrong,
      queue: `q_${testId()}`,
      logger: { warn: (message) => logs.push(message) },
      reconnect: FAST_RECONNECT,
    });
    const ready = reader.ready();
    ready.catch(() => {});
    let error: unknown;
    const sockets = await socketsOpenedBy(async () => {
      error = await reader.run(() => undefined).catch((e: unknown) => e);
      await sleep(200);
    });
    expect(sockets).toHaveLength(1);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/ACCESS.REFUSED/);
    await expect(ready).rejects.toBe(error);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/failed permanently: .*ACCESS.REFUSED.*Fix: check the user name and password/);
    expect([...logs, inspect(error, { depth: 5 })].join("\n")).not.toContain(wrong);
  });

  it("a reader whose provider's fresh credential is refused too: two fetches, then run() rejects", async () => {
    const user = await newUser();
    const logs: string[] = [];
    let fetches = 0;
    const reader = new RabbitMQEventReader({
      hostname: BROKER_HOST,
      vhost,
      credentials: async () => {
        fetches += 1;
        return { username: user, password: wrong };
      },
      queue: `q_${testId()}`,
      logger: { warn: (message) => logs.push(message) },
      reconnect: FAST_RECONNECT,
    });
    const error = await reader.run(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).fix).toMatch(/credentials provider/);
    await sleep(200);
    expect(fetches).toBe(2);
    // The first refusal, then the permanent failure.
    expect(logs).toHaveLength(2);
    expect(logs[1]).toMatch(
      /failed permanently: .*fetched fresh from the credentials provider was refused too/,
    );
  });

  it("a reader that was connected keeps retrying a refused login and reads again once it is accepted", async () => {
    const user = await newUser();
    const queue = `q_${testId()}`;
    const logs: string[] = [];
    const reader = new RabbitMQEventReader({
      hostname: BROKER_HOST,
      vhost,
      username: user,
      password,
      queue,
      deadLetter: false,
      logger: { warn: (message) => logs.push(message) },
      reconnect: FAST_RECONNECT,
    });
    const received: string[] = [];
    const running = reader.run(({ event }) => {
      received.push(event.event_id);
    });
    const publisher = new RabbitMQSink({ hostname: BROKER_HOST, vhost, logger: { warn: () => {} } });
    try {
      await reader.ready();
      await rabbitmqctl("change_password", user, `elsewhere-${testId()}`);
      await rabbitmqctl("close_all_connections", "-p", vhost, "streamll refused-login reader test");
      await waitUntil(
        () => logs.some((line) => /ACCESS.REFUSED/.test(line)),
        10_000,
        "a refused reconnection",
      );
      expect(await settles(running, 300)).toBe("hung");

      await rabbitmqctl("change_password", user, password);
      const event = makeEvent();
      // The publisher's (guest) connection may be closed by close_all_connections too: send until confirmed.
      await waitUntil(
        async () => {
          const result = await publisher
            .send([encoded(event)], { signal: AbortSignal.timeout(2_000), attempt: 1 })
            .then(
              (value) => value === undefined,
              () => false,
            );
          return result;
        },
        10_000,
        "the event to be published",
      );
      await waitUntil(() => received.includes(event.event_id), 15_000, "the reader to read again");
      expect(reader.getStats().reconnects).toBe(1);
    } finally {
      await reader.stop();
      await publisher.close();
    }
    await expect(running).resolves.toBeUndefined();
    expect(logs.join("\n")).not.toContain("failed permanently");
  });
});
