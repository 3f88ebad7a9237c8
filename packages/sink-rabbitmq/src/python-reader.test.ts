// The short Python reader of docs/production/rabbitmq.md (examples/python/rabbitmq_reader.py) against the
// shared RabbitMQ, in a vhost of its own: it reads what RabbitMQSink published through a durable queue,
// acknowledges every event, and rejects malformed messages without stopping or logging their content. The
// Python comes from scripts/python.sh; when it cannot be set up the suite fails, it never skips.
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { encodeEvent } from "@streamll/core";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost, deleteVhost, skipWithoutBroker, vhostUrl } from "./__fixtures__/broker";
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
});
