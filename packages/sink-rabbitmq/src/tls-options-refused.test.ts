// TLS options Node refuses when it builds the secure context (a key the passphrase does not decrypt, a key that is
// not PEM, a PKCS#12 file with a wrong passphrase or damaged) fail every connection attempt alike, whatever the
// error's code (a PKCS#12 "mac verify failure" has none). They are a ConfigurationError naming `tls`: the sink is
// marked failed and reported once, its events dropped as sink-failed, and a reader's run() rejects, instead of
// reconnecting without end. No broker is needed: nothing is connected to.
import { execFile } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";
import { inspect, promisify } from "node:util";
import { ConfigurationError, DeliveryPipeline, DIAGNOSTICS_CHANNEL } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { tlsOptionsError } from "./connection-options";
import { RabbitMQEventReader } from "./rabbitmq-event-reader";
import { RabbitMQSink } from "./rabbitmq-sink";

const openssl = promisify(execFile);
const RIGHT = "right-passphrase-5e1d";
const WRONG = "PLANTED-wrong-passphrase-77b3";
// Nothing listens there: had a connection been attempted, it would be refused (a transient error).
const URL_NO_BROKER = "amqps://127.0.0.1:1";
const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 20 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Material {
  encryptedKey: Buffer;
  derKey: Buffer;
  cert: Buffer;
  pfx: Buffer;
}

let dir: string;
let material: Material;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "streamll-tls-refused-"));
  const at = (name: string) => join(dir, name);
  await openssl("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-aes-128-cbc",
    "-pass",
    `pass:${RIGHT}`,
    "-out",
    at("enc.key"),
  ]);
  await openssl("openssl", [
    "req",
    "-x509",
    "-key",
    at("enc.key"),
    "-passin",
    `pass:${RIGHT}`,
    "-out",
    at("cert.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=streamll test client",
  ]);
  await openssl("openssl", [
    "pkcs12",
    "-export",
    "-inkey",
    at("enc.key"),
    "-passin",
    `pass:${RIGHT}`,
    "-in",
    at("cert.pem"),
    "-out",
    at("client.pfx"),
    "-passout",
    `pass:${RIGHT}`,
  ]);
  await openssl("openssl", [
    "pkey",
    "-in",
    at("enc.key"),
    "-passin",
    `pass:${RIGHT}`,
    "-outform",
    "DER",
    "-out",
    at("key.der"),
  ]);
  material = {
    encryptedKey: await readFile(at("enc.key")),
    derKey: await readFile(at("key.der")),
    cert: await readFile(at("cert.pem")),
    pfx: await readFile(at("client.pfx")),
  };
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The refused options, built once the key material exists, with the reason Node gives for each. */
const cases: [string, () => TlsConnectionOptions, RegExp][] = [
  [
    "a PEM key with the wrong passphrase",
    () => ({ key: material.encryptedKey, cert: material.cert, passphrase: WRONG }),
    /ERR_OSSL_BAD_DECRYPT/,
  ],
  [
    "a { pem, passphrase } key item with the wrong passphrase",
    () => ({ key: [{ pem: material.encryptedKey, passphrase: WRONG }], cert: material.cert }),
    /ERR_OSSL_BAD_DECRYPT/,
  ],
  [
    "a key that is not PEM",
    () => ({ key: material.derKey, cert: material.cert }),
    /DECODER routines::unsupported/,
  ],
  [
    "a PKCS#12 file with the wrong passphrase",
    () => ({ pfx: material.pfx, passphrase: WRONG }),
    /mac verify failure/,
  ],
  [
    "a damaged PKCS#12 file",
    () => ({ pfx: Buffer.from("not a PKCS#12 file"), passphrase: WRONG }),
    /not enough data/,
  ],
  ["ciphers that match nothing", () => ({ ciphers: "NO-SUCH-CIPHER" }), /ERR_SSL_NO_CIPHER_MATCH/],
];

/** Everything a user could see of an error, which must carry neither the passphrase nor the key material. */
function expectNoSecret(surface: string): void {
  expect(surface).not.toContain(WRONG);
  expect(surface).not.toContain(RIGHT);
  expect(surface).not.toContain("PRIVATE KEY");
  expect(surface).not.toContain(material.encryptedKey.toString("utf8").split("\n")[1]);
}

describe("tlsOptionsError", () => {
  it.each(cases)("refuses %s with a ConfigurationError naming tls", (_, tls, reason) => {
    const error = tlsOptionsError({ url: URL_NO_BROKER, tls: tls() });
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error?.message).toMatch(reason);
    expect(error?.issues).toEqual([{ path: "tls", message: expect.stringMatching(/^refused by Node/) }]);
    expect(error?.fix).toMatch(/passphrase/);
    expectNoSecret(inspect(error, { depth: 5 }));
  });

  it("accepts the right passphrase, for a PEM key and for a PKCS#12 file", () => {
    expect(
      tlsOptionsError({ tls: { key: material.encryptedKey, cert: material.cert, passphrase: RIGHT } }),
    ).toBeUndefined();
    expect(tlsOptionsError({ tls: { pfx: material.pfx, passphrase: RIGHT } })).toBeUndefined();
  });

  it("has nothing to check without key material or with the caller's own secure context", () => {
    expect(tlsOptionsError({ url: URL_NO_BROKER })).toBeUndefined();
    expect(tlsOptionsError({ tls: true })).toBeUndefined();
    expect(tlsOptionsError({ tls: { ca: material.cert, servername: "localhost" } })).toBeUndefined();
  });
});

describe("TLS options Node refuses", () => {
  it.each(cases)(
    "fail RabbitMQSink for good with %s: reported once, events dropped as sink-failed, no connection attempted",
    async (_, tls, reason) => {
      const published: unknown[] = [];
      const onMessage = (message: unknown) => published.push(message);
      subscribe(DIAGNOSTICS_CHANNEL, onMessage);
      const sockets: unknown[] = [];
      const onSocket = (message: unknown) => sockets.push(message);
      subscribe("net.client.socket", onSocket);
      const sinkLogs: string[] = [];
      const lines: string[] = [];
      const sink = new RabbitMQSink({
        url: URL_NO_BROKER,
        tls: tls(),
        logger: { warn: (message) => sinkLogs.push(message) },
        reconnect: FAST_RECONNECT,
      });
      const pipeline = new DeliveryPipeline(
        sink,
        { flushIntervalMs: 1, retry: { initialDelayMs: 1 } },
        { logger: { warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) } },
      );
      try {
        for (let i = 0; i < 3; i++) pipeline.enqueue(encoded(makeEvent()));
        expect(await pipeline.flush(5_000)).toBe(true);
        pipeline.enqueue(encoded(makeEvent()));
        // Time for reconnects, had any been scheduled (10-20 ms apart).
        await sleep(100);
        const metrics = pipeline.getMetrics();
        expect(metrics.failed).toMatchObject({
          code: "CONFIGURATION_INVALID",
          message: expect.stringMatching(reason),
          fix: expect.stringContaining("tls"),
        });
        expect(metrics.droppedByReason["sink-failed"]).toBe(4);
        expect(metrics.pending).toBe(0);
        expect(metrics.retried).toBe(0);
        expect(lines).toHaveLength(1);
        expect(published).toEqual([
          expect.objectContaining({ type: "sink-failed", sink: sink.name, code: "CONFIGURATION_INVALID" }),
        ]);
        // The pipeline reports it; the sink's own logger does not repeat it.
        expect(sinkLogs).toEqual([]);
        expect(sockets).toEqual([]);
        expectNoSecret(JSON.stringify([metrics.failed, metrics.lastError, lines, published]));
      } finally {
        unsubscribe(DIAGNOSTICS_CHANNEL, onMessage);
        unsubscribe("net.client.socket", onSocket);
        await pipeline.shutdown(1_000);
      }
    },
  );

  it.each(cases)("reject RabbitMQEventReader.run() with %s, logged once", async (_, tls, reason) => {
    const logs: string[] = [];
    const reader = new RabbitMQEventReader({
      url: URL_NO_BROKER,
      tls: tls(),
      queue: `q_${testId()}`,
      logger: { warn: (message) => logs.push(message) },
      reconnect: FAST_RECONNECT,
    });
    const ready = reader.ready();
    const error = await reader.run(() => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).message).toMatch(reason);
    expect((error as ConfigurationError).issues[0]?.path).toBe("tls");
    await expect(ready).rejects.toBe(error);
    await sleep(50);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/failed permanently: RabbitMQ tls option refused by Node/);
    expectNoSecret(`${inspect(error, { depth: 5 })}\n${logs.join("\n")}`);
  });
});
