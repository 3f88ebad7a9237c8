// The short Python reader of docs/production/rabbitmq.md (examples/python/rabbitmq_reader.py) against the
// shared RabbitMQ, in a vhost of its own: it reads what RabbitMQSink published through a durable queue,
// acknowledges every event, and rejects malformed messages without stopping or logging their content. The
// Python comes from scripts/python.sh; when it cannot be set up the suite fails, it never skips.
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { encodeEvent } from "@streamll/core";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost, deleteVhost, skipWithoutBroker, vhostUrl, waitUntil } from "./__fixtures__/broker";
import { makeEvent } from "./__fixtures__/events";
import { RabbitMQSink } from "./rabbitmq-sink";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SECRET = "sk-planted-amqp-0123456789";
const queue = "streamll-python";
let vhost: string;

describe.skipIf(skipWithoutBroker)("examples/python/rabbitmq_reader.py", () => {
  beforeAll(async () => {
    vhost = await createVhost("streamll_python");
  });

  afterAll(async () => {
    if (vhost !== undefined) await deleteVhost(vhost);
  });

  it("prints every published event, acknowledges all, rejects malformed messages unseen", async () => {
    const python = execFileSync("bash", [`${ROOT}scripts/python.sh`], { encoding: "utf8" }).trim();
    const url = vhostUrl(vhost);
    const sink = new RabbitMQSink({ url, queue: { name: queue }, logger: { warn: () => {} } });
    const events = [
      makeEvent({ module_name: "Retriever", event_type: "end" }),
      makeEvent({ module_name: "Generator", event_type: "token" }),
      makeEvent({ module_name: "QA", event_type: "error" }),
    ].map((event) => encodeEvent(event));
    await sink.send(events.slice(0, 2), { signal: new AbortController().signal, attempt: 1 });
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    channel.publish("streamll_events", "streamll.x.start", Buffer.from(`{"api_key":"${SECRET}"`));
    channel.publish("streamll_events", "streamll.x.start", Buffer.from([0xff, 0xfe]));
    await channel.waitForConfirms();
    await sink.send(events.slice(2), { signal: new AbortController().signal, attempt: 1 });
    await sink.close();

    const args = ["--url", url, "--queue", queue, "--idle-exit", "1"];
    const result = spawnSync(python, [`${ROOT}examples/python/rabbitmq_reader.py`, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const expected = events.map(
      (event) => `${event.execution_id} ${event.module_name}.${event.method_name} ${event.event_type}`,
    );
    expect(
      result.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(" ").slice(1).join(" ")),
    ).toEqual(expected);
    expect(result.stderr).toContain("3 events, 2 invalid");
    expect(`${result.stdout}${result.stderr}`).not.toContain("sk-planted");
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    await connection.close();
  }, 60_000);

  it("reads a queue declared with arguments as it is: quorum, and with a dead-letter exchange", async () => {
    // Redeclaring either with other arguments fails with PRECONDITION_FAILED (406): the reader crashed on both.
    const python = execFileSync("bash", [`${ROOT}scripts/python.sh`], { encoding: "utf8" }).trim();
    const url = vhostUrl(vhost);
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    const quorum = "streamll-python-quorum";
    const withDlx = "streamll-python-dlx";
    for (const name of [quorum, withDlx]) {
      await channel.assertExchange(`${name}.dlx`, "topic", { durable: true });
      await channel.assertQueue(`${name}.dead`, { durable: true });
      await channel.bindQueue(`${name}.dead`, `${name}.dlx`, "#");
    }
    // As RabbitMQEventReader declares its queue (the dead-letter path of docs/production/rabbitmq.md).
    await channel.assertExchange("streamll_events", "topic", { durable: true });
    await channel.assertQueue(withDlx, {
      durable: true,
      arguments: { "x-dead-letter-exchange": `${withDlx}.dlx` },
    });
    await channel.bindQueue(withDlx, "streamll_events", "#");
    // A quorum queue, as RabbitMQSink declares it with `queue: { name, type: "quorum" }`.
    const sink = new RabbitMQSink({
      url,
      queue: { name: quorum, type: "quorum", arguments: { "x-dead-letter-exchange": `${quorum}.dlx` } },
      logger: { warn: () => {} },
    });
    const events = [
      makeEvent({ module_name: "Retriever", event_type: "start" }),
      makeEvent({ module_name: "Retriever", event_type: "end" }),
    ].map((event) => encodeEvent(event));
    await sink.send(events, { signal: new AbortController().signal, attempt: 1 });
    await sink.close();
    // Invalid for decodeEvent and for the Python model: not JSON, and an id that is not URL-safe.
    const invalid = [
      Buffer.from(`{"api_key":"${SECRET}"`),
      Buffer.from(JSON.stringify({ ...makeEvent({ module_name: "Injected" }), event_id: "abc def ghi!" })),
    ];
    for (const body of invalid) channel.publish("streamll_events", "streamll.x.error", body);
    await channel.waitForConfirms();

    for (const name of [quorum, withDlx]) {
      const args = ["--url", url, "--queue", name, "--idle-exit", "1"];
      const result = spawnSync(python, [`${ROOT}examples/python/rabbitmq_reader.py`, ...args], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(result.status, `${name}: ${result.stderr}`).toBe(0);
      expect(
        result.stdout
          .trim()
          .split("\n")
          .map((line) => line.split(" ").slice(1).join(" ")),
      ).toEqual(events.map((event) => `${event.execution_id} Retriever.forward ${event.event_type}`));
      expect(result.stderr).toContain("2 events, 2 invalid");
      expect(`${result.stdout}${result.stderr}`).not.toContain("sk-planted");
      // The queue keeps its arguments, is drained, and the invalid messages went to its dead-letter exchange.
      expect((await channel.checkQueue(name)).messageCount).toBe(0);
      await waitUntil(async () => (await channel.checkQueue(`${name}.dead`)).messageCount === 2, 10_000);
      const dead = [];
      for (let i = 0; i < 2; i++) {
        const message = await channel.get(`${name}.dead`, { noAck: true });
        if (message) dead.push(message.content.toString());
      }
      expect(dead.sort()).toEqual(invalid.map((body) => body.toString()).sort());
    }
    await connection.close();
  }, 60_000);

  it("declares a durable queue when none exists yet", async () => {
    const python = execFileSync("bash", [`${ROOT}scripts/python.sh`], { encoding: "utf8" }).trim();
    const url = vhostUrl(vhost);
    const name = "streamll-python-new";
    const args = ["--url", url, "--queue", name, "--idle-exit", "0.5"];
    const result = spawnSync(python, [`${ROOT}examples/python/rabbitmq_reader.py`, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain("0 events, 0 invalid");
    expect(result.stderr).not.toContain("Channel.Close"); // the expected NOT_FOUND is not logged
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    // A passive check of the queue: it exists. Redeclaring it durable without arguments is equivalent.
    expect((await channel.checkQueue(name)).messageCount).toBe(0);
    await channel.assertQueue(name, { durable: true });
    await connection.close();
  }, 60_000);
});
