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
    await sink.close();
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
});
