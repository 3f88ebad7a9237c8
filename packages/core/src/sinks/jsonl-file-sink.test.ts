import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeliveryPipeline } from "../delivery/delivery-pipeline";
import type { EncodedEvent, SendContext } from "../delivery/sink";
import { runChildWithTimeout, writeTsResolveHook } from "../delivery/spill/spill-test-support";
import { ConfigurationError, SinkError } from "../errors";
import { encodeEvent } from "../events/encode-event";
import type { StreamllEvent } from "../events/event-schema";
import { testEvent } from "../events/test-event";
import { JsonlFileSink } from "./jsonl-file-sink";

let dir: string;
let seq = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "streamll-jsonl-"));
});

afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

/** Events with fixed-width ids and data so every line has the same byte length unless `text` varies. */
function ev(text = "x"): EncodedEvent {
  seq += 1;
  const event: StreamllEvent = {
    schema_version: "1.0",
    event_id: `event${String(seq).padStart(6, "0")}`,
    execution_id: "exec000001",
    span_id: "span000001",
    parent_span_id: null,
    timestamp: "2026-01-01T00:00:00.000Z",
    module_name: "Module",
    method_name: "forward",
    event_type: "note",
    operation: null,
    data: { text },
    tags: {},
    module_version: null,
    code_signature: null,
    git_commit: null,
  };
  return encodeEvent(event);
}

function batch(count: number, text?: string): EncodedEvent[] {
  return Array.from({ length: count }, () => ev(text));
}

function ctx(signal: AbortSignal = new AbortController().signal): SendContext {
  return { signal, attempt: 1 };
}

async function lines(path: string): Promise<string[]> {
  const content = await readFile(path, "utf8");
  expect(content.endsWith("\n") || content === "").toBe(true);
  return content === "" ? [] : content.slice(0, -1).split("\n");
}

const lineBytes = ev().bytes + 1;

describe("JsonlFileSink", () => {
  it("appends one wire-JSON line per event, in order, across batches", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    const first = batch(3);
    const second = batch(2);
    await sink.send(first, ctx());
    await sink.send(second, ctx());
    await sink.close();
    expect(await lines(path)).toEqual([...first, ...second].map((e) => e.json));
    expect(sink.name).toBe("jsonl:events.jsonl");
  });

  it("creates missing directories by default and appends to an existing file without truncating", async () => {
    const path = join(dir, "a", "b", "events.jsonl");
    await mkdir(join(dir, "a", "b"), { recursive: true });
    await writeFile(path, '{"existing":true}\n');
    const sink = new JsonlFileSink({ path, fsync: true });
    const events = batch(2);
    await sink.send(events, ctx());
    await sink.close();
    expect(await lines(path)).toEqual(['{"existing":true}', ...events.map((e) => e.json)]);

    const nested = join(dir, "new", "dir", "events.jsonl");
    const created = new JsonlFileSink({ path: nested });
    await created.send(batch(1), ctx());
    await created.close();
    expect(await lines(nested)).toHaveLength(1);
  });

  it("starts on a new line when the existing file ends mid-line", async () => {
    const path = join(dir, "events.jsonl");
    await writeFile(path, '{"truncated":');
    const sink = new JsonlFileSink({ path });
    const events = batch(1);
    await sink.send(events, ctx());
    await sink.close();
    expect(await lines(path)).toEqual(['{"truncated":', events[0]!.json]);
  });

  it("continues the file when a new sink opens it after close()", async () => {
    const path = join(dir, "events.jsonl");
    const first = new JsonlFileSink({ path });
    const a = batch(2);
    await first.send(a, ctx());
    await first.close();
    const error = await first.send(batch(1), ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as SinkError).code).toBe("SINK_CLOSED");
    expect((error as SinkError).retriable).toBe(false);

    const second = new JsonlFileSink({ path });
    const b = batch(2);
    await second.send(b, ctx());
    await second.close();
    expect(await lines(path)).toEqual([...a, ...b].map((e) => e.json));
  });

  it("never interleaves concurrent batches and keeps call order", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    const batches = Array.from({ length: 20 }, () => batch(50));
    await Promise.all(batches.map((b) => sink.send(b, ctx())));
    await sink.close();
    expect(await lines(path)).toEqual(batches.flat().map((e) => e.json));
  });

  it("keeps order behind a delivery pipeline sending several batches at once", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    const pipeline = new DeliveryPipeline(sink, { maxBatchSize: 10, maxConcurrentBatches: 4 });
    const events = batch(200);
    for (const e of events) pipeline.enqueue(e);
    expect(await pipeline.flush()).toBe(true);
    await pipeline.shutdown();
    expect(pipeline.getMetrics().delivered).toBe(200);
    expect(await lines(path)).toEqual(events.map((e) => e.json));
  });

  it("close() waits for batches in progress", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    const events = batch(100);
    const sending = sink.send(events, ctx());
    await sink.close();
    await sending;
    expect(await lines(path)).toHaveLength(100);
  });

  it("keeps unicode intact, one event per line", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    const texts = [
      "héllo wörld",
      "日本語のテキスト",
      "emoji 🚀🧪",
      "line\nbreak",
      "sep\u2028para\u2029",
      'tab\tquote"',
    ];
    const events = texts.map((t) => ev(t));
    await sink.send(events, ctx());
    await sink.close();
    const read = await lines(path);
    expect(read).toEqual(events.map((e) => e.json));
    expect(read.map((l) => (JSON.parse(l) as StreamllEvent).data.text)).toEqual(texts);
  });

  it("writes exact lines whatever the batch sizes before it (the write buffer is reused)", async () => {
    const path = join(dir, "events.jsonl");
    const sink = new JsonlFileSink({ path });
    // A large batch of multi-byte text, then smaller ones: nothing of an earlier batch may show up in a later one;
    // then one batch too large for the kept buffer (over 4 MiB of UTF-8).
    const batches = [
      batch(200, "日本語🚀".repeat(50)),
      batch(3, "ascii"),
      batch(1, "é"),
      batch(100, "🧪".repeat(8_000)),
      batch(2, "after"),
    ];
    for (const b of batches) await sink.send(b, ctx());
    await sink.close();
    const expected = batches.flat().map((e) => e.json);
    expect(await lines(path)).toEqual(expected);
    expect((await stat(path)).size).toBe(expected.reduce((n, json) => n + Buffer.byteLength(json) + 1, 0));
  });

  describe("rotation", () => {
    it("rotates before a batch that would exceed maxBytes, not at the boundary", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: 3 * lineBytes } });
      const events = batch(4);
      for (const e of events.slice(0, 3)) await sink.send([e], ctx());
      // Exactly at the limit: still one file.
      expect((await stat(path)).size).toBe(3 * lineBytes);
      expect(await readdir(dir)).toEqual(["events.jsonl"]);
      await sink.send([events[3]!], ctx());
      await sink.close();
      expect(await lines(join(dir, "events.1.jsonl"))).toEqual(events.slice(0, 3).map((e) => e.json));
      expect(await lines(path)).toEqual([events[3]!.json]);
    });

    it("writes a batch larger than maxBytes whole into a fresh file", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: 2 * lineBytes } });
      const one = batch(1);
      const big = batch(5);
      await sink.send(one, ctx());
      await sink.send(big, ctx());
      await sink.close();
      expect(await lines(join(dir, "events.1.jsonl"))).toEqual(one.map((e) => e.json));
      expect(await lines(path)).toEqual(big.map((e) => e.json));
    });

    it("keeps maxFiles rotated files, newest as .1, and deletes older ones", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: lineBytes, maxFiles: 2 } });
      const events = batch(5);
      for (const e of events) await sink.send([e], ctx());
      await sink.close();
      expect((await readdir(dir)).sort()).toEqual(["events.1.jsonl", "events.2.jsonl", "events.jsonl"]);
      expect(await lines(path)).toEqual([events[4]!.json]);
      expect(await lines(join(dir, "events.1.jsonl"))).toEqual([events[3]!.json]);
      expect(await lines(join(dir, "events.2.jsonl"))).toEqual([events[2]!.json]);
    });

    it("defaults to 5 rotated files", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: lineBytes } });
      for (let i = 0; i < 9; i++) await sink.send(batch(1), ctx());
      await sink.close();
      expect((await readdir(dir)).sort()).toEqual([
        "events.1.jsonl",
        "events.2.jsonl",
        "events.3.jsonl",
        "events.4.jsonl",
        "events.5.jsonl",
        "events.jsonl",
      ]);
    });

    it("with maxFiles 0 starts over without keeping old files", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: lineBytes, maxFiles: 0 } });
      const events = batch(3);
      for (const e of events) await sink.send([e], ctx());
      await sink.close();
      expect(await readdir(dir)).toEqual(["events.jsonl"]);
      expect(await lines(path)).toEqual([events[2]!.json]);
    });

    it("counts bytes, not characters, and accounts for a file that existed before", async () => {
      const path = join(dir, "events");
      await writeFile(path, `${"é".repeat(20)}\n`); // 41 bytes, 21 characters
      const sink = new JsonlFileSink({ path, rotate: { maxBytes: 41 + lineBytes - 1 } });
      const e = ev();
      await sink.send([e], ctx());
      await sink.close();
      expect(await readFile(join(dir, "events.1"), "utf8")).toBe(`${"é".repeat(20)}\n`);
      expect(await lines(path)).toEqual([e.json]);
    });
  });

  describe("errors", () => {
    it("reports a directory in place of the file as non-retriable, then recovers when it is fixed", async () => {
      const path = join(dir, "events.jsonl");
      await mkdir(path);
      const sink = new JsonlFileSink({ path });
      const error = await sink.send(batch(1), ctx()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).retriable).toBe(false);
      expect((error as SinkError).message).toContain("EISDIR");
      await rm(path, { recursive: true });
      const events = batch(1);
      await sink.send(events, ctx());
      await sink.close();
      expect(await lines(path)).toEqual(events.map((e) => e.json));
    });

    it("reports a file in place of a parent directory as non-retriable", async () => {
      await writeFile(join(dir, "plain"), "");
      const sink = new JsonlFileSink({ path: join(dir, "plain", "events.jsonl"), mkdir: false });
      const error = await sink.send(batch(1), ctx()).catch((e: unknown) => e);
      expect((error as SinkError).retriable).toBe(false);
      await sink.close();
    });

    it("reports a missing directory with mkdir disabled as retriable", async () => {
      const sink = new JsonlFileSink({ path: join(dir, "missing", "events.jsonl"), mkdir: false });
      const error = await sink.send(batch(1), ctx()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).retriable).toBe(true);
      await sink.close();
    });

    it("reports ENOSPC as retriable and starts the next batch on a new line after a partial write", async () => {
      const path = join(dir, "events.jsonl");
      const probe = await open(path, "a");
      const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
      await probe.close();
      const realWrite = proto.write;
      let calls = 0;
      vi.spyOn(proto, "write").mockImplementation(async function (this: unknown, ...args: unknown[]) {
        calls += 1;
        if (calls === 1) {
          // The disk fills up part-way: half the batch lands, then the write fails.
          const [buffer, offset] = args as [Buffer, number];
          await realWrite.call(this, buffer, offset, 10);
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        }
        return realWrite.apply(this, args);
      });
      const sink = new JsonlFileSink({ path });
      const failed = batch(1);
      const error = await sink.send(failed, ctx()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).retriable).toBe(true);
      await sink.send(failed, ctx());
      await sink.close();
      expect(await lines(path)).toEqual([failed[0]!.json.slice(0, 10), failed[0]!.json]);
    });

    it("does not write a batch whose send was aborted before its turn", async () => {
      const path = join(dir, "events.jsonl");
      const sink = new JsonlFileSink({ path });
      const controller = new AbortController();
      controller.abort();
      const error = await sink.send(batch(1), ctx(controller.signal)).catch((e: unknown) => e);
      expect((error as SinkError).code).toBe("SEND_TIMEOUT");
      expect((error as SinkError).retriable).toBe(true);
      const events = batch(1);
      await sink.send(events, ctx());
      await sink.close();
      expect(await lines(path)).toEqual(events.map((e) => e.json));
    });

    it("rejects invalid options with a ConfigurationError naming each option", () => {
      const issuesOf = (fn: () => unknown): string[] => {
        try {
          fn();
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigurationError);
          return (error as ConfigurationError).issues.map((i) => i.path);
        }
        return [];
      };
      expect(issuesOf(() => new JsonlFileSink({ path: "" }))).toEqual(["path"]);
      expect(issuesOf(() => new JsonlFileSink({ path: "x", rotate: { maxBytes: 0, maxFiles: -1 } }))).toEqual(
        ["rotate.maxBytes", "rotate.maxFiles"],
      );
    });
  });
});

describe("JsonlFileSink: a directory it cannot create", () => {
  // Node's recursive mkdir never returns for a path under /proc/sys (and keeps a libuv thread busy for good):
  // run the sink in a child that is killed after a few seconds, so a regression fails instead of hanging.
  it.skipIf(process.platform !== "linux")(
    "fails the send at once under /proc/sys instead of hanging",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "streamll-jsonl-proc-"));
      try {
        const hook = writeTsResolveHook(dir);
        const sinkPath = new URL("./jsonl-file-sink.ts", import.meta.url).pathname;
        const encodedPath = new URL("../delivery/sink.ts", import.meta.url).pathname;
        const script = join(dir, "child.ts");
        await writeFile(
          script,
          `import { JsonlFileSink } from ${JSON.stringify(sinkPath)};
import { encodedEventFromJson } from ${JSON.stringify(encodedPath)};
const sink = new JsonlFileSink({ path: "/proc/sys/streamll-test/events.jsonl" });
const event = encodedEventFromJson(${JSON.stringify(JSON.stringify(testEvent()))});
try {
  await sink.send([event], { signal: new AbortController().signal, attempt: 1 });
  console.log("sent");
} catch (error) {
  console.log(JSON.stringify({ name: error.name, message: error.message }));
}
`,
        );
        const result = runChildWithTimeout(hook, script);
        expect(result.signal, "the child hung and was killed").toBeNull();
        expect(result.stderr).toBe("");
        expect(JSON.parse(result.stdout)).toMatchObject({ name: "SinkError" });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
