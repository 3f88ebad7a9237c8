// Issue 13: an authentication the server rejects for good is not retried as if transient. Static credentials
// (URL or options) rejected by the server, or a provider's credential rejected again after a fresh fetch, fail
// the sink once (ConfigurationError → `failed` in metrics, one diagnostics message, events `sink-failed`) and end
// a reader. Everything runs against a private redis-server with `requirepass` and ACL users, never the shared one.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { inspect } from "node:util";
import type { Credentials } from "@streamll/core";
import { ConfigurationError, DeliveryPipeline, DIAGNOSTICS_CHANNEL } from "@streamll/core";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisEventReader } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";
import { sequence } from "./test-support/events";
import { PrivateRedis, redisServerInstalled, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const PLANTED = "sk-proj-PLANTEDSECRET1234567890abcdef";
const ADMIN_PASSWORD = "admin-password-0123456789";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connections the server accepted so far (every attempt, failed logins included). */
async function connectionsReceived(admin: Redis): Promise<number> {
  const info = String(await admin.info("stats"));
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

interface Harness {
  pipeline: DeliveryPipeline;
  sink: RedisSink;
  lines: string[];
  sinkErrors: string[];
  published: unknown[];
  /** Everything observable, joined: metrics, logs, the sink's errors, diagnostics, the sink's inspection. */
  surfaces(): string;
  dispose(): Promise<void>;
}

function harness(options: ConstructorParameters<typeof RedisSink>[0]): Harness {
  const lines: string[] = [];
  const sinkErrors: string[] = [];
  const sink = new RedisSink({
    name: uniqueName("auth-sink"),
    connectTimeoutMs: 2_000,
    ...options,
    onError: (error) => sinkErrors.push(`${error.name} ${error.code} ${error.message} ${inspect(error)}`),
  });
  const published: unknown[] = [];
  const onMessage = (message: unknown) => published.push(message);
  subscribe(DIAGNOSTICS_CHANNEL, onMessage);
  const pipeline = new DeliveryPipeline(
    sink,
    { flushIntervalMs: 5, retry: { initialDelayMs: 20, maxDelayMs: 100 } },
    { logger: { warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } },
  );
  return {
    pipeline,
    sink,
    lines,
    sinkErrors,
    published: published,
    surfaces: () =>
      [
        JSON.stringify(pipeline.getMetrics()),
        inspect(pipeline.getMetrics(), { depth: 5 }),
        lines.join("\n"),
        sinkErrors.join("\n"),
        JSON.stringify(published),
        inspect(published, { depth: 5 }),
        inspect(sink, { depth: 3 }),
      ].join("\n"),
    dispose: async () => {
      unsubscribe(DIAGNOSTICS_CHANNEL, onMessage);
      await pipeline.shutdown(1_000);
    },
  };
}

/**
 * The sink failed for good, reported once: `failed` in metrics with a fix, every event dropped as `sink-failed`,
 * one diagnostics message, one log line.
 */
async function expectFailedOnce(
  h: Harness,
  events: number,
  message: RegExp = /Redis rejected the (password|credential|connection)/,
): Promise<void> {
  await waitUntil(() => h.pipeline.getMetrics().failed !== null, "the sink to be marked failed", 8_000);
  const metrics = h.pipeline.getMetrics();
  expect(metrics.failed).toMatchObject({ code: "CONFIGURATION_INVALID" });
  expect(metrics.failed?.fix).toEqual(expect.any(String));
  expect(metrics.failed?.message).toMatch(message);
  expect(metrics.droppedByReason["sink-failed"]).toBe(events);
  expect(metrics.delivered).toBe(0);
  expect(h.published).toEqual([
    expect.objectContaining({ type: "sink-failed", sink: h.sink.name, code: "CONFIGURATION_INVALID" }),
  ]);
  expect(h.lines.filter((line) => line.includes("failed permanently"))).toHaveLength(1);
}

/** What a reader's run() came to within 8 s: its rejection, "resolved", or "still running" (then stopped). */
async function runOutcome(reader: RedisEventReader): Promise<unknown> {
  const outcome = await Promise.race([
    reader
      .run(() => undefined)
      .then(
        () => "resolved",
        (error: unknown) => error,
      ),
    sleep(8_000).then(() => "still running"),
  ]);
  if (outcome === "still running") await reader.stop(1_000);
  return outcome;
}

describe.skipIf(!redisServerInstalled())(
  "authentication rejected by the server (private redis-server)",
  () => {
    let server: PrivateRedis;
    let admin: Redis;
    let writer: string;
    const writerPassword = "writer-password-0123456789";

    beforeAll(async () => {
      server = await PrivateRedis.start({ password: ADMIN_PASSWORD });
      admin = server.admin();
      writer = uniqueName("writer").replace(/[^A-Za-z0-9_-]/g, "_");
      await admin.call("ACL", "SETUSER", writer, "on", `>${writerPassword}`, "~*", "+@all");
    });

    afterAll(async () => {
      admin?.disconnect();
      await server?.stop();
    });

    it("static wrong password in the URL: permanent at once, reported once, few connection attempts", async () => {
      const before = await connectionsReceived(admin);
      const url = `redis://${writer}:${encodeURIComponent(PLANTED)}@127.0.0.1:${server.port}`;
      const h = harness({ url, stream: uniqueName("static-url") });
      try {
        for (const event of sequence(5)) h.pipeline.enqueue(event);
        await expectFailedOnce(h, 5);
        // Later events are dropped too, and nothing reconnects in the background.
        for (const event of sequence(2)) h.pipeline.enqueue(event);
        await sleep(1_000);
        expect(h.pipeline.getMetrics().droppedByReason["sink-failed"]).toBe(7);
        expect(h.pipeline.getMetrics().failed?.message).toMatch(/WRONGPASS/);
        const attempts = (await connectionsReceived(admin)) - before;
        expect(attempts).toBeGreaterThanOrEqual(1);
        expect(attempts).toBeLessThanOrEqual(2);
        expect(h.surfaces()).not.toContain(PLANTED);
        expect(h.surfaces()).not.toContain("PLANTEDSECRET");
      } finally {
        await h.dispose();
      }
    });

    it("static wrong password in the options (default user): permanent", async () => {
      const h = harness({ url: server.url, password: PLANTED, stream: uniqueName("static-opt") });
      try {
        for (const event of sequence(3)) h.pipeline.enqueue(event);
        await expectFailedOnce(h, 3);
        expect(h.surfaces()).not.toContain(PLANTED);
      } finally {
        await h.dispose();
      }
    });

    it("no password for a server that requires one (NOAUTH): permanent, the fix names the password", async () => {
      const h = harness({ url: server.url, stream: uniqueName("noauth") });
      try {
        for (const event of sequence(3)) h.pipeline.enqueue(event);
        await expectFailedOnce(h, 3);
        expect(h.pipeline.getMetrics().failed?.message).toMatch(/NOAUTH/);
        expect(h.pipeline.getMetrics().failed?.fix).toMatch(/password/);
      } finally {
        await h.dispose();
      }
    });

    it("a provider whose every credential is rejected: permanent after one fresh fetch", async () => {
      let calls = 0;
      const provider = async (): Promise<Credentials> => {
        calls += 1;
        return { username: writer, password: PLANTED };
      };
      const before = await connectionsReceived(admin);
      const h = harness({ url: server.url, credentials: provider, stream: uniqueName("provider-wrong") });
      try {
        for (const event of sequence(4)) h.pipeline.enqueue(event);
        await expectFailedOnce(h, 4);
        expect(h.pipeline.getMetrics().failed?.message).toMatch(/fetched fresh/);
        await sleep(1_000);
        // The first fetch, then exactly one fresh fetch after the rejection.
        expect(calls).toBe(2);
        const attempts = (await connectionsReceived(admin)) - before;
        expect(attempts).toBeGreaterThanOrEqual(2);
        expect(attempts).toBeLessThanOrEqual(4);
        expect(h.surfaces()).not.toContain(PLANTED);
        expect(h.surfaces()).not.toContain("PLANTEDSECRET");
      } finally {
        await h.dispose();
      }
    });

    it("a provider that rotates (wrong, then right after the fresh fetch): delivered, not failed", async () => {
      let calls = 0;
      const provider = async (): Promise<Credentials> => {
        calls += 1;
        return { username: writer, password: calls === 1 ? PLANTED : writerPassword };
      };
      const stream = uniqueName("provider-rotates");
      const h = harness({ url: server.url, credentials: provider, stream });
      try {
        for (const event of sequence(6)) h.pipeline.enqueue(event);
        expect(await h.pipeline.flush(10_000)).toBe(true);
        const metrics = h.pipeline.getMetrics();
        expect(metrics).toMatchObject({ emitted: 6, delivered: 6, dropped: 0, failed: null });
        expect(h.published).toEqual([]);
        expect(calls).toBe(2);
        expect(await admin.xlen(stream)).toBe(6);
        expect(h.surfaces()).not.toContain(PLANTED);
      } finally {
        await h.dispose();
      }
    });

    it("the reader with a wrong password: run() rejects with a ConfigurationError instead of retrying", async () => {
      const errors: unknown[] = [];
      const reader = new RedisEventReader({
        url: server.url,
        username: writer,
        password: PLANTED,
        stream: uniqueName("reader-wrong"),
        group: "g",
        blockMs: 100,
        connectTimeoutMs: 2_000,
        onError: (error) => errors.push(error),
      });
      const ready = reader.ready();
      const outcome = await runOutcome(reader);
      expect(outcome).toBeInstanceOf(ConfigurationError);
      const error = outcome as ConfigurationError;
      expect(error.message).toMatch(/WRONGPASS/);
      expect(error.fix).toEqual(expect.any(String));
      await expect(ready).rejects.toBe(error);
      expect(errors.filter((e) => e instanceof ConfigurationError)).toHaveLength(1);
      const text = [inspect(errors, { depth: 5 }), String(error), error.fix, JSON.stringify(error)].join(
        "\n",
      );
      expect(text).not.toContain(PLANTED);
    });

    it("the reader with a provider whose credential is always rejected: run() rejects", async () => {
      let calls = 0;
      const reader = new RedisEventReader({
        url: server.url,
        credentials: async () => {
          calls += 1;
          return { username: writer, password: PLANTED };
        },
        stream: uniqueName("reader-provider"),
        group: "g",
        blockMs: 100,
        connectTimeoutMs: 2_000,
        onError: () => undefined,
      });
      const outcome = await runOutcome(reader);
      expect(outcome).toBeInstanceOf(ConfigurationError);
      expect(calls).toBe(2);
    });
  },
);

describe("TLS options Node refuses at connect time", () => {
  // Values the options schema passes on to Node (its keys are "checked by Node") that tls.connect throws on
  // synchronously: every attempt would fail the same way, so they are a ConfigurationError, not a retry loop.
  it.each([
    ["ca: 5", { ca: 5 as unknown as string }, /ERR_INVALID_ARG_TYPE/],
    [
      "checkServerIdentity: 5",
      { checkServerIdentity: 5 as unknown as () => undefined },
      /ERR_INVALID_ARG_TYPE/,
    ],
    ["ciphers that match nothing", { ciphers: "NO-SUCH-CIPHER" }, /ERR_SSL_NO_CIPHER_MATCH/],
    ["cert that is not PEM", { cert: "not a certificate" }, /ERR_OSSL_/],
  ])("tls { %s } fails the sink for good instead of retrying silently", async (_, tls, code) => {
    let h: Harness;
    try {
      h = harness({ url: "redis://127.0.0.1:1", tls, stream: uniqueName("tls-options") });
    } catch (error) {
      // Once core's options schema checks a value (it does for `ca`), the constructor refuses it: permanent too.
      expect(error).toBeInstanceOf(ConfigurationError);
      return;
    }
    try {
      for (const event of sequence(2)) h.pipeline.enqueue(event);
      await expectFailedOnce(h, 2, code);
      expect(h.pipeline.getMetrics().failed?.fix).toMatch(/tls/);
    } finally {
      await h.dispose();
    }
  });
});

describe.skipIf(!redisServerInstalled())("authentication rejected by a one-node Redis Cluster", () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = await PrivateRedis.start({ cluster: true, password: ADMIN_PASSWORD });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("static wrong password: permanent, reported once, no secret", async () => {
    const h = harness({ url: server.url, password: PLANTED, cluster: true });
    try {
      for (const event of sequence(3)) h.pipeline.enqueue(event);
      await expectFailedOnce(h, 3);
      expect(h.surfaces()).not.toContain(PLANTED);
    } finally {
      await h.dispose();
    }
  });

  it("a provider wrong, then right after the fresh fetch: delivered", async () => {
    let calls = 0;
    const h = harness({
      url: server.url,
      cluster: true,
      credentials: async () => {
        calls += 1;
        return { password: calls === 1 ? PLANTED : ADMIN_PASSWORD };
      },
    });
    try {
      for (const event of sequence(3)) h.pipeline.enqueue(event);
      expect(await h.pipeline.flush(10_000)).toBe(true);
      expect(h.pipeline.getMetrics()).toMatchObject({ delivered: 3, failed: null });
      expect(calls).toBe(2);
    } finally {
      await h.dispose();
    }
  });
});
