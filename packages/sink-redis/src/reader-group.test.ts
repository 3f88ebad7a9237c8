// Several RedisEventReader processes in one consumer group, against the real Redis: sharing, crash hand-over
// (XAUTOCLAIM after claimIdleMs), graceful leave/join, and stop() semantics. The reader processes run the
// built package (test/reader-process.mjs).
import { fileURLToPath } from "node:url";
import { type EncodedEvent, encodeEvent } from "@streamll/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReaderGroup, summarize } from "../../../test-support/reader-group.mjs";
import { RedisEventReader } from "./redis-event-reader";
import { RedisSink } from "./redis-sink";
import { sendContext, testEvent } from "./test-support/events";
import { REDIS_URL, redisAvailable, uniqueName } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const available = await redisAvailable();
const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const GROUP = "workers";

/** `count` events over `count / 20` executions (20 events each, like small module calls). */
function makeEvents(count: number): EncodedEvent[] {
  let executionId = "";
  return Array.from({ length: count }, (_, seq) => {
    const event = testEvent({ data: { seq } });
    if (seq % 20 === 0) executionId = event.execution_id;
    return encodeEvent({ ...event, execution_id: executionId });
  });
}

describe.skipIf(!available)("RedisEventReader consumer group across processes", () => {
  let admin: Redis;
  const keys: string[] = [];

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  /** Appends `count` events to `stream`; returns their ids. */
  async function append(stream: string, count: number): Promise<string[]> {
    const events = makeEvents(count);
    const sink = new RedisSink({ url: REDIS_URL, stream, maxLen: 200_000 });
    for (let i = 0; i < events.length; i += 5_000) {
      const result = await sink.send(events.slice(i, i + 5_000), sendContext());
      expect(result?.failures ?? []).toEqual([]);
    }
    await sink.close();
    return events.map((event) => JSON.parse(event.json).event_id as string);
  }

  async function writeEvents(count: number): Promise<{ stream: string; ids: string[] }> {
    const stream = uniqueName("group");
    keys.push(stream, `${stream}:dead-letter`);
    return { stream, ids: await append(stream, count) };
  }

  /** True once every entry was delivered to the group and acknowledged. */
  async function drained(stream: string): Promise<boolean> {
    const exists = (await admin.exists(stream)) === 1 && ((await admin.xinfo("GROUPS", stream)) as unknown[]);
    if (!exists || exists.length === 0) return false;
    const pending = (await admin.xpending(stream, GROUP)) as [number, ...unknown[]];
    if (Number(pending[0]) !== 0) return false;
    const groups = (await admin.xinfo("GROUPS", stream)) as unknown[][];
    const info = groups.map((fields) => {
      const out: Record<string, unknown> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) out[String(fields[i])] = fields[i + 1];
      return out;
    });
    return info.find((group) => group.name === GROUP)?.lag === 0;
  }

  async function consumers(stream: string): Promise<{ name: string; pending: number }[]> {
    const rows = (await admin.xinfo("CONSUMERS", stream, GROUP)) as unknown[][];
    return rows.map((fields) => ({ name: String(fields[1]), pending: Number(fields[3]) }));
  }

  function group(stream: string, reader: Record<string, unknown> = {}, handlerDelayMs = 0): ReaderGroup {
    return new ReaderGroup({
      worker: WORKER,
      config: {
        reader: { url: REDIS_URL, stream, group: GROUP, startFrom: "beginning", blockMs: 200, ...reader },
        handlerDelayMs,
      },
    });
  }

  it("3 reader processes share 100,000 events; one SIGKILLed at 30%: every id handled, duplicates explained", async () => {
    const { stream, ids } = await writeEvents(100_000);
    const readers = group(stream, { claimIdleMs: 2_000, claimIntervalMs: 500 });
    try {
      const [victim] = readers.start(3);
      await readers.waitForHandled(30_000);
      await victim!.kill();
      // The victim's consumer holds what it fetched but had not acknowledged.
      const orphaned = (await consumers(stream)).find((c) => c.name.includes(`-${victim!.pid}-`));
      expect(orphaned?.pending ?? 0).toBeGreaterThan(0);
      await readers.waitFor(() => drained(stream), "the survivors to drain the group", 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`redis, 3 readers, SIGKILL at 30%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      expect(analysis.unexpected).toEqual([]);
      // Every process got a share of the work.
      for (const count of analysis.perReader) expect(count).toBeGreaterThan(0);
      // A duplicate is the one entry whose handler had finished (and logged) when the kill landed before its
      // XACK: the dead reader handled it, a survivor claimed and handled it again. At most one per crash.
      expect(analysis.extraDeliveries).toBeLessThanOrEqual(1);
      for (const duplicate of analysis.duplicates) {
        expect(duplicate.readers).toHaveLength(2);
        expect(duplicate.readers).toContain(victim!.index);
      }
      // Acknowledgements leave in order, so the ones lost with the process are the last it sent: the duplicates
      // are exactly the tail of the victim's log.
      const victimIds = victim!.ids();
      const victimTail = victimIds.slice(victimIds.length - analysis.duplicates.length);
      expect(new Set(analysis.duplicates.map((duplicate) => duplicate.id))).toEqual(new Set(victimTail));
      const survivors = readers.readers.filter((reader) => reader !== victim);
      const claimed = survivors.reduce((sum, reader) => sum + (reader.final?.stats.claimed ?? 0), 0);
      expect(claimed).toBeGreaterThanOrEqual(orphaned?.pending ?? 1);
      // The survivors deleted their consumers when they stopped (nothing pending). The victim never left: its
      // consumer stays listed, drained.
      expect(await consumers(stream)).toEqual([{ name: orphaned!.name, pending: 0 }]);
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("a reader leaving (SIGTERM) and one joining hand over without loss and without duplicates", async () => {
    const total = 20_000;
    const { stream, ids } = await writeEvents(total);
    // claimIdleMs is far longer than the test: released entries must be taken over at once, not after it.
    // 1 ms of work per event keeps the run long enough for the leave and the join to happen mid-stream.
    const readers = group(stream, { claimIdleMs: 600_000, claimIntervalMs: 200 }, 1);
    try {
      const [leaving] = readers.start(3);
      await readers.waitForHandled(total * 0.3);
      const exit = await leaving!.terminate();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(leaving!.final?.stats.acknowledged).toBe(leaving!.final?.handled);
      await readers.waitForHandled(total * 0.6);
      readers.add();
      await readers.waitFor(() => drained(stream), "the group to drain", 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`redis, leave at 30% and join at 60%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      expect(analysis.duplicates).toEqual([]);
      expect(analysis.perReader[3]).toBeGreaterThan(0);
      // Everyone left the group: the leaver handed its unhandled entries to another consumer, then deleted
      // its own; the others had nothing pending when they stopped.
      expect(await consumers(stream)).toEqual([]);
      expect(leaving!.final?.stats.released).toBeGreaterThanOrEqual(0);
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("stop() finishes the handler in flight, acknowledges it, hands the rest back and leaves the group", async () => {
    const { stream } = await writeEvents(10);
    const options = { url: REDIS_URL, stream, group: GROUP, startFrom: "beginning" as const, blockMs: 100 };
    const first = new RedisEventReader({ ...options, consumer: "first", count: 10 });
    let finished = false;
    let stopping: Promise<void> | undefined;
    const running = first.run(async () => {
      stopping = first.stop();
      await new Promise((resolve) => setTimeout(resolve, 300));
      finished = true;
    });
    await first.ready();
    await waitUntil(() => stopping !== undefined, "the first handler call");
    await stopping;
    await running;
    expect(finished).toBe(true);
    expect(first.getStats()).toMatchObject({ received: 10, acknowledged: 1, released: 9 });
    // No other consumer to hand them to: the 9 unhandled entries wait on "first", which stays in the group
    // (deleting it would drop them), marked idle with their delivery count unchanged.
    expect(await consumers(stream)).toEqual([{ name: "first", pending: 9 }]);

    // Another consumer takes them over at once, although claimIdleMs is a minute.
    const second = new RedisEventReader({ ...options, consumer: "second", claimIdleMs: 60_000 });
    const deliveries: number[] = [];
    const secondRun = second.run((_event, message) => {
      deliveries.push(message.deliveryCount);
      if (deliveries.length === 9) void second.stop();
    });
    await secondRun;
    expect(deliveries).toEqual(Array(9).fill(1));
    expect(second.getStats()).toMatchObject({ claimed: 9, acknowledged: 9 });
    // A reader stopped before it ever read is never ready.
    const never = new RedisEventReader({ ...options, consumer: "never" });
    await never.stop();
    await expect(never.ready()).rejects.toThrow("stopped before it was ready");
    // "second" had nothing pending when it stopped and left; "first" is drained.
    expect(await consumers(stream)).toEqual([{ name: "first", pending: 0 }]);

    // With another consumer in the group, a stopping reader hands its unhandled entries over and leaves.
    await append(stream, 10);
    const third = new RedisEventReader({ ...options, consumer: "third", count: 10 });
    const thirdRun = third.run(async () => {
      void third.stop();
    });
    await thirdRun;
    expect(third.getStats()).toMatchObject({ acknowledged: 1, released: 9 });
    expect(await consumers(stream)).toEqual([{ name: "first", pending: 9 }]);
  });
});
