// A client certificate Node cannot load (a PKCS#12 or key whose passphrase is wrong, a `pfx` that is not PKCS#12)
// fails the same way on every attempt. Node throws some of these without an error code ("mac verify failure"),
// so they are recognised by where they are thrown: building the TLS context from the `tls` options. The sink
// fails once (ConfigurationError naming `tls`) and a reader's run() rejects, instead of both retrying forever.
import { execFileSync } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { inspect } from "node:util";
import { ConfigurationError, DeliveryPipeline, DIAGNOSTICS_CHANNEL } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSinkError } from "./redis-errors";
import { RedisEventReader } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const RIGHT = "right-passphrase-4f9a";
const WRONG = "WRONG-passphrase-PLANTED-8d2e";

function opensslInstalled(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

interface ClientCert {
  /** Encrypted PEM private key (passphrase {@link RIGHT}). */
  key: Buffer;
  cert: Buffer;
  /** PKCS#12 bundle of both (passphrase {@link RIGHT}). */
  pfx: Buffer;
}

function makeClientCert(dir: string): ClientCert {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-keyout",
      "client.key",
      "-out",
      "client.crt",
      "-days",
      "1",
    ].concat(["-subj", "/CN=streamll test client", "-passout", `pass:${RIGHT}`]),
  );
  run(
    ["pkcs12", "-export", "-inkey", "client.key", "-in", "client.crt", "-out", "client.pfx"].concat([
      "-passin",
      `pass:${RIGHT}`,
      "-passout",
      `pass:${RIGHT}`,
    ]),
  );
  return {
    key: readFileSync(join(dir, "client.key")),
    cert: readFileSync(join(dir, "client.crt")),
    pfx: readFileSync(join(dir, "client.pfx")),
  };
}

describe.skipIf(!opensslInstalled())("TLS client certificates Node cannot load", () => {
  let dir: string;
  let client: ClientCert;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "streamll-redis-client-cert-"));
    client = makeClientCert(dir);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: [string, () => ConnectionOptions][] = [
    ["a PKCS#12 with the wrong passphrase", () => ({ pfx: client.pfx, passphrase: WRONG })],
    ["a pfx that is not PKCS#12", () => ({ pfx: Buffer.from("not a PKCS#12 bundle"), passphrase: WRONG })],
    [
      "an encrypted key with the wrong passphrase",
      () => ({ key: client.key, cert: client.cert, passphrase: WRONG }),
    ],
  ];

  it.each(cases)("%s fails the sink once, naming tls, without the passphrase", async (_, tls) => {
    const lines: string[] = [];
    const sinkErrors: string[] = [];
    const published: unknown[] = [];
    const onMessage = (message: unknown) => published.push(message);
    subscribe(DIAGNOSTICS_CHANNEL, onMessage);
    // Port 1: nothing listens there, and nothing has to: the context is built before any socket is opened.
    const sink = new RedisSink({
      url: "rediss://127.0.0.1:1",
      tls: tls(),
      name: uniqueName("tls-context"),
      connectTimeoutMs: 2_000,
      onError: (error) => sinkErrors.push(`${error.message} ${inspect(error)}`),
    });
    const pipeline = new DeliveryPipeline(
      sink,
      { flushIntervalMs: 5, retry: { initialDelayMs: 20, maxDelayMs: 100 } },
      { logger: { warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } },
    );
    try {
      for (const event of sequence(3)) pipeline.enqueue(event);
      await waitUntil(() => pipeline.getMetrics().failed !== null, "the sink to be marked failed", 8_000);
      const metrics = pipeline.getMetrics();
      expect(metrics.failed).toMatchObject({ code: "CONFIGURATION_INVALID" });
      expect(metrics.failed?.message).toMatch(/^Redis tls options were refused by Node/);
      expect(metrics.failed?.fix).toMatch(/passphrase/);
      expect(metrics.droppedByReason["sink-failed"]).toBe(3);
      expect(published).toEqual([expect.objectContaining({ type: "sink-failed", sink: sink.name })]);
      expect(lines.filter((line) => line.includes("failed permanently"))).toHaveLength(1);
      const surfaces = [
        JSON.stringify(metrics),
        inspect(metrics, { depth: 5 }),
        lines.join("\n"),
        sinkErrors.join("\n"),
        inspect(published, { depth: 5 }),
      ].join("\n");
      expect(surfaces).not.toContain(WRONG);
      expect(surfaces).not.toContain(RIGHT);
      expect(surfaces).not.toContain("PRIVATE KEY");
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNEL, onMessage);
      await pipeline.shutdown(1_000);
    }
  });

  it.each(cases)("%s makes a reader's run() reject with a ConfigurationError", async (_, tls) => {
    const reported: unknown[] = [];
    const reader = new RedisEventReader({
      url: "rediss://127.0.0.1:1",
      tls: tls(),
      group: "g",
      stream: uniqueName("tls-context-reader"),
      connectTimeoutMs: 60_000,
      onError: (error) => reported.push(error),
    });
    let stillRunning = true;
    const outcome = reader
      .run(() => undefined)
      .then(
        () => "resolved",
        (error: unknown) => error,
      );
    const timer = setTimeout(() => void reader.stop(1_000), 20_000);
    try {
      const error = await outcome;
      stillRunning = false;
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues).toEqual([expect.objectContaining({ path: "tls" })]);
      expect(inspect(error)).not.toContain(WRONG);
      expect(reported.filter((e) => e instanceof ConfigurationError)).toHaveLength(1);
    } finally {
      clearTimeout(timer);
      if (stillRunning) await reader.stop(1_000);
    }
  });

  it("the right passphrase is no configuration error: the send fails retriably (nothing listens)", async () => {
    const sink = new RedisSink({
      url: "rediss://127.0.0.1:1",
      tls: { pfx: client.pfx, passphrase: RIGHT },
      connectTimeoutMs: 300,
    });
    try {
      const error = await sink.send(sequence(1), sendContext()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RedisSinkError);
      expect(error).not.toBeInstanceOf(ConfigurationError);
      expect((error as RedisSinkError).retriable).toBe(true);
    } finally {
      await sink.close();
    }
  });
});
