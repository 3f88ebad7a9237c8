// Several KafkaEventReader processes in one consumer group over a 6-partition topic, against the harness
// broker: sharing, crash hand-over (the group rebalances after the session timeout), graceful leave/join,
// stop() semantics, and replayExecution while the group consumes. The reader processes run the built package
// (test/reader-process.mjs).
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createId, type StreamllEvent } from "@streamll/core";
import { AssignerProtocol, Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReaderGroup, summarize } from "../../../test-support/reader-group.mjs";
import { kafkaPlaintextConfig, REPO_ROOT, requireBroker, uniqueTopic } from "../test/broker";
import { KafkaEventReader } from "./kafka-event-reader";
import { KafkaSink } from "./kafka-sink";
import { createTopic, encodeAll, makeEvent, recordingLogger } from "./test-support/kafka-test-support";

const WORKER = fileURLToPath(new URL("../test/reader-process.mjs", import.meta.url));
const PARTITIONS = 6;
const connection = kafkaPlaintextConfig();
const admin = new Kafka({
  clientId: "streamll-group-test",
  logLevel: logLevel.NOTHING,
  ...connection,
}).admin();

/**
 * Runs examples/python/rebuild_execution.py (the Python consumer of docs/kafka.md) for one execution, with a
 * lookup group of its own that commits nothing; resolves with the execution it printed as JSON.
 */
async function rebuildInPython(
  topic: string,
  executionId: string,
): Promise<{ execution_id: string; event_count: number }> {
  const python = execFileSync("bash", [join(REPO_ROOT, "scripts/python.sh")], { encoding: "utf8" }).trim();
  const script = join(REPO_ROOT, "examples/python/rebuild_execution.py");
  const args = [script, "--bootstrap-servers", connection.brokers.join(","), "--topic", topic];
  args.push("--group-id", `py-lookup-${createId()}`, "--no-commit", "--stop-at-end");
  // "=": an id may start with "-", which argparse would read as an option.
  args.push(`--execution-id=${executionId}`, "--json");
  // Asynchronously, so the test's own event loop (and its view of the reader processes) keeps running.
  const child = spawn(python, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`rebuild_execution.py exited ${code}: ${stderr.slice(-2_000)}`);
  return JSON.parse(stdout.trim().split("\n")[0]!) as { execution_id: string; event_count: number };
}

/**
 * `count` events over `count / 20` executions of one span each (start, 18 custom events, end), like small
 * module calls.
 */
function makeEvents(count: number): StreamllEvent[] {
  let executionId = "";
  let spanId = "";
  return Array.from({ length: count }, (_, seq) => {
    const position = seq % 20;
    if (position === 0) {
      executionId = createId();
      spanId = createId();
    }
    const event_type = position === 0 ? "start" : position === 19 ? "end" : "progress";
    return makeEvent({ execution_id: executionId, span_id: spanId, event_type, data: { seq } });
  });
}

async function produce(topic: string, events: readonly StreamllEvent[]): Promise<void> {
  const sink = new KafkaSink({ brokers: connection.brokers, topic, logger: recordingLogger() });
  try {
    for (let i = 0; i < events.length; i += 5_000) {
      const batch = encodeAll(events.slice(i, i + 5_000));
      const result = await sink.send(batch, { signal: AbortSignal.timeout(60_000), attempt: 1 });
      expect(result).toBeUndefined();
    }
  } finally {
    await sink.close();
  }
}

/** True when the group is stable with `members` members that all own partitions of the topic. */
async function groupStable(groupId: string, members: number): Promise<boolean> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  if (group?.state !== "Stable" || group.members.length !== members) return false;
  return group.members.every((member) => {
    const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
    return Object.values(decoded?.assignment ?? {}).some((partitions) => partitions.length > 0);
  });
}

beforeAll(async () => {
  await requireBroker(["plaintext"]);
  await admin.connect();
});

afterAll(async () => {
  await admin.disconnect();
});

describe("KafkaEventReader consumer group across processes", () => {
  async function startGroup(
    count: number,
    reader: Record<string, unknown> = {},
    handlerDelayMs = 0,
  ): Promise<{ readers: ReaderGroup; topic: string; groupId: string }> {
    const topic = uniqueTopic("group");
    await createTopic(connection, topic, PARTITIONS);
    const groupId = `group-${createId()}`;
    const readers = new ReaderGroup({
      worker: WORKER,
      config: {
        reader: { brokers: connection.brokers, topic, groupId, fromBeginning: true, ...reader },
        handlerDelayMs,
      },
    });
    readers.start(count);
    await readers.waitFor(() => groupStable(groupId, count), `${count} members in ${groupId}`, 90_000);
    return { readers, topic, groupId };
  }

  it("3 reader processes share 100,000 events; one SIGKILLed at 30%: every id handled, duplicates explained; replayExecution and the Python consumer work meanwhile", async () => {
    // The session timeout is the crash hand-over time: the victim's partitions move after it.
    const { readers, topic, groupId } = await startGroup(3, { sessionTimeoutMs: 10_000 });
    try {
      const events = makeEvents(100_000);
      const ids = events.map((event) => event.event_id);
      const producing = produce(topic, events);
      await readers.waitForHandled(30_000);
      const victim = readers.readers[0]!;
      await victim.kill();
      await producing;

      // Replay one execution while the survivors consume (and the group rebalances).
      const executionId = events[50_000]!.execution_id;
      const replayer = new KafkaEventReader({
        brokers: connection.brokers,
        topic,
        groupId: `replay-${createId()}`,
        logger: recordingLogger(),
      });
      try {
        const replay = await replayer.replayExecution(executionId, { timeoutMs: 60_000 });
        const expected = events.filter((event) => event.execution_id === executionId);
        expect(replay.events.map((event) => event.event_id).sort()).toEqual(
          expected.map((event) => event.event_id).sort(),
        );
      } finally {
        await replayer.close();
      }
      // And the Python consumer (examples/python) rebuilds it from the same topic meanwhile.
      const rebuilt = await rebuildInPython(topic, executionId);
      expect(rebuilt).toMatchObject({ execution_id: executionId, event_count: 20 });

      await readers.waitForIds(ids, 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`kafka, 3 readers, SIGKILL at 30%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      expect(analysis.unexpected).toEqual([]);
      for (const count of analysis.perReader) expect(count).toBeGreaterThan(0);
      // A duplicate is an event the victim handled after its last commit: the batch it was in the middle of
      // (batches are handled one at a time and committed at their end). The partition's next owner resumed
      // from the commit and handled those events again. They are exactly the tail of the victim's log.
      for (const duplicate of analysis.duplicates) {
        expect(duplicate.readers).toHaveLength(2);
        expect(duplicate.readers).toContain(victim.index);
      }
      const victimIds = victim.ids();
      const victimTail = victimIds.slice(victimIds.length - analysis.duplicates.length);
      expect(new Set(analysis.duplicates.map((duplicate) => duplicate.id))).toEqual(new Set(victimTail));
      // The survivors committed everything and left the group when they stopped.
      const { groups } = await admin.describeGroups([groupId]);
      expect(groups[0]?.members).toEqual([]);
      const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
      const committed = offsets[0]!.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
      expect(committed).toBe(100_000);
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("a reader leaving (SIGTERM) and one joining hand over without loss and without duplicates", async () => {
    const total = 20_000;
    const { readers, topic, groupId } = await startGroup(3, {}, 1);
    try {
      const events = makeEvents(total);
      const ids = events.map((event) => event.event_id);
      // The first 60 % now; the rest once the joining reader owns partitions, so it has work whatever the
      // machine's speed (the two survivors could otherwise finish everything before the rebalance ends).
      const joinAt = total * 0.6;
      await produce(topic, events.slice(0, joinAt));
      await readers.waitForHandled(total * 0.3);
      const leaving = readers.readers[0]!;
      expect(await leaving.terminate()).toEqual({ code: 0, signal: null });
      await readers.waitForHandled(joinAt);
      readers.add();
      await readers.waitFor(() => groupStable(groupId, 3), `the joining reader in ${groupId}`, 90_000);
      await produce(topic, events.slice(joinAt));
      await readers.waitForIds(ids, 360_000);
      await readers.stopAll();
      const analysis = readers.analyze(ids);
      console.info(`kafka, leave at 30% and join at 60%: ${summarize(analysis)}`);
      expect(analysis.missing).toEqual([]);
      // Every reader committed what it handled before giving up a partition (on leaving, and on each
      // rebalance the leave and the join caused), so nothing was handled twice.
      expect(analysis.duplicates).toEqual([]);
      expect(analysis.perReader[3]).toBeGreaterThan(0);
      const { groups } = await admin.describeGroups([groupId]);
      expect(groups[0]?.members).toEqual([]);
    } finally {
      await readers.close();
    }
  }, 420_000);

  it("stop() finishes the handler in flight, commits it and leaves the group", async () => {
    const topic = uniqueTopic("group-stop");
    await createTopic(connection, topic, PARTITIONS);
    const events = makeEvents(40);
    await produce(topic, events);
    const groupId = `group-${createId()}`;
    const reader = new KafkaEventReader({
      brokers: connection.brokers,
      topic,
      groupId,
      fromBeginning: true,
      logger: recordingLogger(),
    });
    let finished = false;
    let stopping: Promise<void> | undefined;
    let handled: { partition: number; offset: string } | undefined;
    await reader.run(async (record) => {
      stopping = reader.stop();
      await new Promise((resolve) => setTimeout(resolve, 300));
      handled = { partition: record.partition, offset: record.offset };
      finished = true;
    });
    await stopping;
    expect(finished).toBe(true);
    expect(reader.getStats().handled).toBe(1);
    // The handled event's offset is committed, nothing after it, and the reader is no longer a member.
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const committed = offsets[0]!.partitions
      .filter((p) => Number(p.offset) >= 0)
      .map(({ partition, offset }) => ({ partition, offset }));
    expect(committed).toEqual([
      { partition: handled!.partition, offset: String(Number(handled!.offset) + 1) },
    ]);
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0]?.members).toEqual([]);
    await reader.close();
  });
});
