// A token written in the URL's user-name slot (`redis://TOKEN@host`, a slip for `redis://:TOKEN@host`) is a
// secret like any password: the rejected login is reported without it, in the thrown error, the metrics, the
// sink's onError and the CLI's output. The shared Redis has no user of that name, so it rejects the login.
import { inspect } from "node:util";
import { ConfigurationError, DeliveryPipeline } from "@streamll/core";
import { recordingIo } from "@streamll/core/internal";
import { describe, expect, it } from "vitest";
import { main } from "./cli-main";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();
const PLANTED = "PLANTED-S3CRET-7c1d";
const { hostname, port } = new URL(REDIS_URL);

/** The shared Redis's URL with `userinfo` in front of the host. */
const urlWith = (userinfo: string) => `redis://${userinfo}@${hostname}:${port || "6379"}`;

describe.skipIf(!available)("a secret in the URL's user-name slot", () => {
  it("never appears in the sink's error, metrics or onError", async () => {
    const lines: string[] = [];
    const sinkErrors: string[] = [];
    const sink = new RedisSink({
      url: urlWith(PLANTED),
      name: uniqueName("url-user"),
      connectTimeoutMs: 2_000,
      onError: (error) => sinkErrors.push(`${error.message} ${inspect(error)}`),
    });
    const thrown = await sink.send(sequence(1), sendContext()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect((thrown as ConfigurationError).message).toMatch(/user name in the URL \(not shown/);
    expect((thrown as ConfigurationError).fix).toMatch(/redis:\/\/:PASSWORD@host/);

    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5 },
      { logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) } },
    );
    try {
      for (const event of sequence(2)) pipeline.enqueue(event);
      await waitUntil(() => pipeline.getMetrics().failed !== null, "the sink to be marked failed");
      const metrics = pipeline.getMetrics();
      const surfaces = [
        inspect(thrown, { depth: 5 }),
        JSON.stringify(metrics),
        inspect(metrics, { depth: 5 }),
        lines.join("\n"),
        sinkErrors.join("\n"),
      ].join("\n");
      expect(surfaces).not.toContain(PLANTED);
    } finally {
      await pipeline.shutdown(1_000);
    }
  });

  it("never appears in the CLI's output", async () => {
    const recorded = recordingIo({});
    const status = await main(["export", "--url", urlWith(PLANTED), "--max", "1"], recorded.io);
    expect(status).toBe(1);
    expect(recorded.stderr()).toMatch(/Redis rejected the password for the user name in the URL/);
    expect(`${recorded.stdout()}${recorded.stderr()}`).not.toContain(PLANTED);
  });

  it("still names a user whose password is in the URL", async () => {
    const sink = new RedisSink({ url: urlWith("streamll-nosuchuser:some-password-1234") });
    try {
      await expect(sink.send(sequence(1), sendContext())).rejects.toThrow(/for user "streamll-nosuchuser"/);
    } finally {
      await sink.close();
    }
  });

  it("hides a user name equal to the password", async () => {
    const sink = new RedisSink({ url: urlWith(`${PLANTED}:${PLANTED}`) });
    try {
      const error = await sink.send(sequence(1), sendContext()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(inspect(error, { depth: 5 })).not.toContain(PLANTED);
    } finally {
      await sink.close();
    }
  });
});
