import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { promisify } from "node:util";
import { SinkError } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROKER_HOST, BROKER_PORT, createVhost, deleteVhost, skipWithoutBroker } from "./__fixtures__/broker";
import { encoded, makeEvent, testId } from "./__fixtures__/events";
import { RabbitMQSink } from "./rabbitmq-sink";

const openssl = promisify(execFile);
const quiet = { warn: () => {} };

/**
 * The shared broker has no TLS listener and must not be reconfigured, so TLS is terminated by a local proxy
 * in front of it with a certificate from a throwaway CA: the client-side verification (CA trust and host
 * name) is exercised for real, end to end through amqplib to the broker.
 */
describe.skipIf(skipWithoutBroker)("TLS (amqps) through a TLS-terminating proxy", () => {
  let dir: string;
  let ca: string;
  let server: Server;
  let port: number;
  let vhost: string;
  const sinks: RabbitMQSink[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "streamll-tls-"));
    const at = (name: string) => join(dir, name);
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      at("ca.key"),
      "-out",
      at("ca.crt"),
      "-days",
      "1",
      "-subj",
      "/CN=streamll test CA",
    ]);
    await openssl("openssl", [
      "req",
      ...ec,
      "-keyout",
      at("server.key"),
      "-out",
      at("server.csr"),
      "-subj",
      "/CN=localhost",
    ]);
    await writeFile(
      at("ext.cnf"),
      "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    await openssl("openssl", [
      "x509",
      "-req",
      "-in",
      at("server.csr"),
      "-CA",
      at("ca.crt"),
      "-CAkey",
      at("ca.key"),
      "-CAcreateserial",
      "-out",
      at("server.crt"),
      "-days",
      "1",
      "-extfile",
      at("ext.cnf"),
    ]);
    ca = await readFile(at("ca.crt"), "utf8");
    server = createServer(
      { key: await readFile(at("server.key")), cert: await readFile(at("server.crt")) },
      (socket) => {
        const upstream = netConnect(BROKER_PORT, BROKER_HOST);
        socket.pipe(upstream).pipe(socket);
        socket.on("error", () => upstream.destroy());
        upstream.on("error", () => socket.destroy());
      },
    );
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    port = typeof address === "object" && address ? address.port : 0;
    vhost = await createVhost("streamll_tls");
  });

  afterAll(async () => {
    await Promise.all(sinks.map((sink) => sink.close()));
    await new Promise((resolve) => server?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
    if (vhost) await deleteVhost(vhost);
  });

  function newSink(url: string, tls?: { ca: string }): RabbitMQSink {
    const sink = new RabbitMQSink({
      url,
      logger: quiet,
      exchange: `x_${testId()}`,
      mandatory: false,
      ...(tls ? { tls } : {}),
    });
    sinks.push(sink);
    return sink;
  }

  const path = () => `/${encodeURIComponent(vhost)}`;

  it("publishes over amqps when the server certificate is trusted and matches the host", async () => {
    const sink = newSink(`amqps://guest:guest@localhost:${port}${path()}`, { ca });
    const result = await sink.send([encoded(makeEvent())], {
      signal: new AbortController().signal,
      attempt: 1,
    });
    expect(result).toBeUndefined();
    expect(sink.getStats()).toMatchObject({ confirmed: 1, connected: true });
  });

  it("verifies by default: an untrusted certificate is refused", async () => {
    const sink = newSink(`amqps://guest:tls-Secret-1@localhost:${port}${path()}`);
    const error = await sink.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as Error).message).toMatch(/certificate/i);
    expect((error as Error).message).not.toContain("tls-Secret-1");
  });

  it("verifies the host name: a certificate for another name is refused", async () => {
    const sink = newSink(`amqps://guest:guest@127.0.0.1:${port}${path()}`, { ca });
    const error = await sink.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as Error).message).toMatch(/altnames|not in the cert/i);
  });
});
