// Memory during a long outage: a child process emits steadily while its sink cannot reach Kafka, and reports
// RSS, V8 heap and external memory every 200 ms beside the queue's own bytes. Two sinks: KafkaSink pointed at a
// closed port (kafkajs included), and a sink that fails every send (the delivery pipeline alone).
// Usage: node bench/outage-memory.mjs [seconds=60] [rate=5000]  (run `pnpm build` first)
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { startBench } from "../../../test-support/bench-results.mjs";
import { ProducerProcess } from "../../../test-support/spill-producer.mjs";

const seconds = Number(process.argv[2] ?? 60);
const rate = Number(process.argv[3] ?? 5_000);
const MiB = 1024 * 1024;
// About 500 bytes of JSON per event, like a typical module call.
const pad = "x".repeat(220);

async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function measure(worker, sink, extraEnv = {}) {
  const producer = new ProducerProcess(
    fileURLToPath(new URL(worker, import.meta.url)),
    {
      sink,
      delivery: { maxQueueSize: 10_000, circuitBreaker: { resetTimeoutMs: 1_000 } },
      count: seconds * rate,
      rate,
      pad,
      sampleMs: 200,
      flushTimeoutMs: 1,
    },
    extraEnv,
  );
  await producer.waitFor((p) => p.emitted, (seconds + 120) * 1_000, "the run");
  producer.child.send({ type: "finish" });
  await producer.kill("SIGKILL");
  const samples = producer.samples;
  const base = samples[0].memory;
  const tail = samples.slice(Math.floor(samples.length * 0.75));
  const avg = (pick) => tail.reduce((sum, s) => sum + pick(s), 0) / tail.length;
  const last = samples[samples.length - 1];
  return {
    baseline_rss_bytes: base.rss,
    rss_above_baseline_bytes: avg((s) => s.memory.rss) - base.rss,
    heap_used_above_baseline_bytes: avg((s) => s.memory.heapUsed) - base.heapUsed,
    heap_total_above_baseline_bytes: avg((s) => s.memory.heapTotal) - base.heapTotal,
    external_above_baseline_bytes:
      avg((s) => s.memory.external + s.memory.arrayBuffers) - (base.external + base.arrayBuffers),
    queue_bytes: avg((s) => s.metrics.pendingBytes),
    queue_events: Math.round(avg((s) => s.metrics.pending)),
    dropped: last.metrics.dropped,
  };
}

const bench = startBench(
  new URL("..", import.meta.url),
  "outage-memory",
  `memory during a ${seconds} s outage at ${rate} events/s (~500 B each), last quarter averaged`,
);
const port = await closedPort();
for (const [name, worker, sink] of [
  ["failing_sink", "./failing-producer.mjs", {}],
  [
    "kafka_closed_port",
    "../test/spill-producer.mjs",
    { brokers: [`127.0.0.1:${port}`], topic: "outage-memory" },
  ],
]) {
  const result = await measure(worker, sink);
  bench.merge(`outage.${name}`, result);
  console.log(
    name,
    Object.fromEntries(
      Object.entries(result).map(([k, v]) => [k, k.endsWith("bytes") ? `${(v / MiB).toFixed(1)} MiB` : v]),
    ),
  );
}
console.log(`results: ${bench.write()}`);
