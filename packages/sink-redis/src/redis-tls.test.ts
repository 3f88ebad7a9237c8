import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSinkError } from "./redis-errors";
import { RedisEventReader } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import {
  generateTlsFiles,
  PrivateRedis,
  redisServerInstalled,
  type TlsFiles,
} from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const installed = redisServerInstalled();

describe.skipIf(!installed)("TLS (private redis-server with a certificate made for this test)", () => {
  let files: TlsFiles;
  let server: PrivateRedis;

  beforeAll(async () => {
    files = generateTlsFiles();
    server = await PrivateRedis.start({ tls: files });
  });

  afterAll(async () => {
    await server?.stop();
    files?.cleanup();
  });

  it("connects with rediss:// when the server certificate chains to the configured CA", async () => {
    const sink = new RedisSink({
      url: `rediss://localhost:${server.port}`,
      stream: "tls-events",
      tls: { ca: readFileSync(files.caCert) },
    });
    await sink.send(sequence(5), sendContext());
    const reader = new RedisEventReader({
      url: `rediss://localhost:${server.port}`,
      stream: "tls-events",
      group: "g",
      startFrom: "beginning",
      blockMs: 100,
      tls: { ca: readFileSync(files.caCert) },
    });
    const seen: unknown[] = [];
    const running = reader.run((event) => {
      seen.push(event.data);
    });
    await waitUntil(() => seen.length === 5, "events over TLS");
    await reader.stop();
    await running;
    expect(seen).toEqual([0, 1, 2, 3, 4].map((seq) => ({ seq })));
    await sink.close();
  });

  it("writes to a TLS Redis Cluster whose nodes announce the host name on the certificate", async () => {
    // The managed services' setup: CLUSTER SLOTS names hosts, and the certificate is for that name.
    const cluster = await PrivateRedis.start({
      tls: files,
      cluster: true,
      args: [
        "--tls-cluster",
        "yes",
        "--cluster-announce-hostname",
        "localhost",
        "--cluster-preferred-endpoint-type",
        "hostname",
      ],
    });
    try {
      const errors: string[] = [];
      const sink = new RedisSink({
        url: `rediss://localhost:${cluster.port}`,
        cluster: true,
        tls: { ca: readFileSync(files.caCert) },
        onError: (error) => errors.push(error.message),
      });
      expect(await sink.send(sequence(20), sendContext())).toBeUndefined();
      const admin = cluster.admin();
      try {
        expect(await admin.xlen("{streamll}:events")).toBe(20);
      } finally {
        admin.disconnect();
      }
      await sink.close();
      expect(errors).toEqual([]);
    } finally {
      await cluster.stop();
    }
  });

  it("refuses a server whose certificate does not chain to the CA (verification is on by default)", async () => {
    for (const tls of [{ ca: readFileSync(files.otherCaCert) }, true] as const) {
      const errors: string[] = [];
      const sink = new RedisSink({
        url: `rediss://localhost:${server.port}`,
        tls,
        connectTimeoutMs: 500,
        onError: (error) => errors.push(error.message),
      });
      const error = await sink.send(sequence(1), sendContext()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisSinkError);
      expect((error as RedisSinkError).retriable).toBe(true);
      await waitUntil(() => /certificate/i.test(errors.join("\n")), "a certificate error");
      await sink.close();
    }
  });

  it("refuses a certificate issued for another host name", async () => {
    const errors: string[] = [];
    const sink = new RedisSink({
      // Same server, but reached by IP: the certificate names only the host name localhost.
      url: `rediss://127.0.0.1:${server.port}`,
      tls: { ca: readFileSync(files.caCert) },
      connectTimeoutMs: 500,
      onError: (error) => errors.push(error.message),
    });
    await expect(sink.send(sequence(1), sendContext())).rejects.toBeInstanceOf(RedisSinkError);
    await waitUntil(() => /altnames/.test(errors.join("\n")), "a host name mismatch");
    await sink.close();
  });

  it("never lets a failed TLS handshake escape as an uncaught exception (it would end the host process)", async () => {
    // A socket that fails verification, or is closed mid-handshake, can error twice (the local error, then
    // the server's alert); ioredis alone listens with `once`, so the second error would be thrown from the
    // event loop. Many short-lived sinks closed at staggered moments hit that window reliably.
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const sink = new RedisSink({
            // Half by IP (host name mismatch), half with a CA that did not sign the certificate.
            url: `rediss://${i % 2 === 0 ? "127.0.0.1" : "localhost"}:${server.port}`,
            tls: { ca: readFileSync(i % 2 === 0 ? files.caCert : files.otherCaCert) },
            connectTimeoutMs: 2_000,
            onError: () => undefined,
          });
          const sending = sink.send(sequence(1), sendContext()).catch(() => undefined);
          await new Promise((resolve) => setTimeout(resolve, (i % 20) * 10));
          await sink.close();
          await sending;
        }),
      );
      // Late alerts on the closed sockets arrive within milliseconds on loopback.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });
});
