// RedisEventReader at scale, against the real Redis, on the built package (`pnpm build` first):
//   1. scale-out: events/s handled by 1, 2 and 4 reader processes in one consumer group, with a handler that
//      does 1 ms of async work (a timer);
//   2. per-event overhead of one reader (no-op handler) against raw ioredis doing the same protocol work:
//      XREADGROUP COUNT 100, JSON.parse, one XACK per event after its handler.
// Writes bench/results/readers.json. Settings: REDIS_URL, BENCH_EVENTS (scale-out, default 4000),
// BENCH_ROUNDS (3), BENCH_OVERHEAD_EVENTS (20000).
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { encodeEvent } from "@streamll/core";
import { Redis } from "ioredis";
import { startBench } from "../../../test-support/bench-results.mjs";
import {
  BENCH,
  benchEvents,
  log,
  overhead,
  report,
  scaleOut,
  sendAll,
  timed,
  timedReader,
} from "../../../test-support/reader-bench.mjs";
import { RedisEventReader, RedisSink } from "../dist/index.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const {
  events: EVENTS,
  rounds: ROUNDS,
  overheadEvents: OVERHEAD_EVENTS,
  handlerDelayMs: HANDLER_DELAY_MS,
} = BENCH;
const COUNT = 100; // the reader's default entries per read
const GROUP = "bench";
const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));

const id = () => randomBytes(9).toString("base64url");
const bench = startBench(
  PACKAGE_DIR,
  "readers",
  "RedisEventReader: scale-out over reader processes, and per-event cost against raw ioredis",
);

const makeEvents = (count) => benchEvents(count, encodeEvent);

const admin = new Redis(REDIS_URL);
const streams = [];

function write(stream, events) {
  return sendAll(new RedisSink({ url: REDIS_URL, stream, maxLen: events.length * 2 }), events);
}

async function newStream() {
  const stream = `streamll-bench:readers:${id()}`;
  streams.push(stream);
  await admin.xgroup("CREATE", stream, GROUP, "$", "MKSTREAM");
  return stream;
}

console.log(`streamll sink-redis readers bench — ${EVENTS} events per scale-out run, ${ROUNDS} rounds`);
const scale = await scaleOut({
  worker: WORKER,
  readerCounts: [1, 2, 4],
  events: EVENTS,
  rounds: ROUNDS,
  handlerDelayMs: HANDLER_DELAY_MS,
  log,
  prepare: async () => {
    const stream = await newStream();
    const events = makeEvents(EVENTS);
    return {
      config: { reader: { url: REDIS_URL, stream, group: GROUP, blockMs: 100 } },
      ready: (group) => group.readers.every((reader) => reader.ready),
      produce: () => write(stream, events),
      cleanup: () => admin.del(stream),
    };
  },
});

console.log(`\nper-event overhead: ${OVERHEAD_EVENTS} events, no-op handler`);
async function filledStream() {
  const stream = await newStream();
  await write(stream, makeEvents(OVERHEAD_EVENTS));
  return stream;
}
const cost = await overhead({
  rounds: ROUNDS,
  log,
  raw: async () => {
    const stream = await filledStream();
    const client = new Redis(REDIS_URL);
    const result = await timed(OVERHEAD_EVENTS, async (onEvent, done) => {
      let finished = false;
      done.then(() => {
        finished = true;
      });
      while (!finished) {
        const reply = await client.xreadgroup(
          "GROUP",
          GROUP,
          "raw",
          "COUNT",
          COUNT,
          "BLOCK",
          100,
          "STREAMS",
          stream,
          ">",
        );
        for (const [, entries] of reply ?? []) {
          for (const [entryId, fields] of entries) {
            JSON.parse(fields[1]);
            onEvent();
            await client.xack(stream, GROUP, entryId);
          }
        }
      }
    });
    client.disconnect();
    await admin.del(stream);
    return result;
  },
  reader: async () => {
    const stream = await filledStream();
    const reader = new RedisEventReader({
      url: REDIS_URL,
      stream,
      group: GROUP,
      consumer: "reader",
      blockMs: 100,
    });
    const result = await timedReader(OVERHEAD_EVENTS, reader);
    await admin.del(stream);
    return result;
  },
});
await admin.del(...streams);
const info = /redis_version:(\S+)/.exec(await admin.info("server"))?.[1];
admin.disconnect();
report(bench, {
  broker: { name: "redis", version: info ?? "unknown", url: REDIS_URL },
  settings: {
    events: EVENTS,
    rounds: ROUNDS,
    handler_delay_ms: HANDLER_DELAY_MS,
    count: COUNT,
    overhead_events: OVERHEAD_EVENTS,
  },
  scale,
  cost,
  client: "ioredis",
});
process.exit(0);
