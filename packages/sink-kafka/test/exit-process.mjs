// A program that sends events with a KafkaSink and simply ends, without shutdown(): the exit test checks that
// it exits by itself and that its events arrived. Runs the built package (`pnpm build` first). The sink keeps
// its default kafkajs retries, so an unreachable broker exercises the retry schedule users get.
import { readFileSync } from "node:fs";
import { configure, emit, encodeEvent, SCHEMA_VERSION } from "@streamll/core";
import { KafkaSink } from "../dist/index.js";

const env = process.env;
// SASL_SSL (PLAIN) when a CA file is given: the sink's sockets are then TLS sockets.
const secured = env.STREAMLL_EXIT_CA_FILE
  ? {
      tls: { ca: readFileSync(env.STREAMLL_EXIT_CA_FILE) },
      sasl: {
        mechanism: "plain",
        username: env.STREAMLL_EXIT_SASL_USERNAME,
        password: env.STREAMLL_EXIT_SASL_PASSWORD,
      },
    }
  : {};
const sink = new KafkaSink({
  brokers: env.STREAMLL_EXIT_BROKERS.split(","),
  topic: env.STREAMLL_EXIT_TOPIC,
  createTopic: { numPartitions: 1 },
  connectionTimeoutMs: 1_000,
  logLevel: "nothing",
  ...secured,
});
const count = Number(env.STREAMLL_EXIT_COUNT);
if (env.STREAMLL_EXIT_DIRECT === "1") {
  // The sink used directly: each awaited call must hold the process until it settles, though the sink's
  // connections do not (Node ends a program whose only pending work is unref'd, mid-await, with code 13).
  const result = await sink.send(encodedEvents(count), { signal: new AbortController().signal, attempt: 1 });
  if (result !== undefined) throw new Error(`send reported failures: ${JSON.stringify(result)}`);
  await sink.close();
} else {
  configure({
    sinks: [sink],
    exitFlushTimeoutMs: Number(env.STREAMLL_EXIT_FLUSH_MS ?? 10_000),
  });
  for (let i = 0; i < count; i++) emit("exit.probe", { i });
}
// With a pause the batch is delivered before the program ends, leaving an idle, open connection behind.
const idleMs = Number(env.STREAMLL_EXIT_IDLE_MS ?? 0);
if (idleMs > 0) await new Promise((resolve) => setTimeout(resolve, idleMs));
// For the test's failure message: what still holds the process long after it should have ended.
setTimeout(() => {
  process.stderr.write(`still alive: ${process.getActiveResourcesInfo().join(",")}\n`);
}, 10_000).unref();

/** Events as `send()` takes them, for a program that uses the sink directly, without `configure()`. */
function encodedEvents(count) {
  return Array.from({ length: count }, (_, i) =>
    encodeEvent({
      schema_version: SCHEMA_VERSION,
      event_id: `exit-direct-${i}`,
      execution_id: "exit-direct",
      span_id: "exit-direct",
      parent_span_id: null,
      timestamp: new Date().toISOString(),
      module_name: "exit",
      method_name: "direct",
      event_type: "exit.probe",
      operation: null,
      data: { i },
      tags: {},
      module_version: null,
      code_signature: null,
      git_commit: null,
    }),
  );
}
