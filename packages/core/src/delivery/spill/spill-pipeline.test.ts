import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  promises,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigurationError } from "../../errors";
import { configure, getMetrics, shutdown } from "../../instrument/runtime";
import { DeliveryPipeline } from "../delivery-pipeline";
import type { SinkMetrics } from "../delivery-types";
import { formatSinkMetrics } from "../format-metrics";
import type { Sink } from "../sink";
import { SEGMENT_HEADER } from "./segment-format";
import { segmentFileName } from "./spill-slot";
import {
  balanced,
  enqueueSteadily,
  ev,
  options,
  pipelineFor,
  quiet,
  SwitchSink,
  segmentFiles,
  shutDownPipelines,
  spillDir,
  spillDirs,
  until,
  writeTsResolveHook,
} from "./spill-test-support";

/** The disk budget of {@link pipelineWithFullBudget}. */
const maxBytes = 8_192;

/**
 * A pipeline whose disk budget (`maxBytes`, segments of 2 KiB) 1,000 events overflowed while `sink` was down,
 * returned once some were dropped as `spill-full` and `settled` holds.
 */
async function pipelineWithFullBudget(
  dir: string,
  sink: Sink,
  settled: (metrics: SinkMetrics) => boolean,
): Promise<DeliveryPipeline> {
  const pipeline = pipelineFor(
    sink,
    options(dir, { spill: { directory: dir, maxBytes, segmentBytes: 2_048 } }),
  );
  await enqueueSteadily(pipeline, 0, 1_000);
  await until(() => {
    const m = pipeline.getMetrics();
    return m.droppedByReason["spill-full"] > 0 && settled(m);
  }, "the budget to fill");
  return pipeline;
}

afterEach(async () => {
  vi.restoreAllMocks();
  await shutDownPipelines();
  await shutdown(1_000);
});

describe("disk spill", () => {
  it("spills while the sink is down instead of dropping, replays everything once it is back, deletes the segments, and the accounting holds in every snapshot", async () => {
    const dir = spillDir();
    const sink = new SwitchSink();
    const pipeline = pipelineFor(sink, options(dir, { spill: { directory: dir, segmentBytes: 4096 } }));
    const snapshots: SinkMetrics[] = [];
    for (let i = 0; i < 2_000; i++) {
      pipeline.enqueue(ev(i));
      if (i % 100 === 0) {
        snapshots.push(pipeline.getMetrics());
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    // Files are created off the event loop, so the count is compared once the writer is idle: with nothing
    // buffered, no segment is being opened.
    await until(() => {
      const m = pipeline.getMetrics();
      return m.spilled >= 1_900 && m.spill?.buffered === 0;
    }, "the spill to reach disk and its writer to be idle");
    const during = pipeline.getMetrics();
    expect(during.dropped).toBe(0);
    expect(during.spill?.segments).toBeGreaterThan(1);
    expect(segmentFiles(dir).length).toBe(during.spill?.segments);
    sink.up = true;
    const poll = setInterval(() => snapshots.push(pipeline.getMetrics()), 2);
    expect(await pipeline.flush(10_000)).toBe(true);
    clearInterval(poll);
    const after = pipeline.getMetrics();
    expect(after).toMatchObject({ emitted: 2_000, delivered: 2_000, dropped: 0, pending: 0 });
    expect(after.replayed).toBeGreaterThanOrEqual(1_900);
    expect(new Set(sink.acked).size).toBe(2_000);
    for (const m of snapshots) expect(balanced(m)).toBe(true);
    await until(() => segmentFiles(dir).length === 0, "segments to be deleted");
    expect(after.spill?.bytes).toBe(0);
    expect(formatSinkMetrics(after)).toMatch(/spilled \d+, replayed \d+, recovered 0, on disk 0 \(0 B\)/);
  });

  it("spills what does not fit a full queue while the sink is up but slow", async () => {
    const dir = spillDir();
    const sink = new SwitchSink();
    sink.up = true;
    sink.delayMs = 20;
    const pipeline = pipelineFor(sink, options(dir));
    await enqueueSteadily(pipeline, 0, 1_000);
    expect(pipeline.getMetrics().dropped).toBe(0);
    expect(await pipeline.flush(10_000)).toBe(true);
    const m = pipeline.getMetrics();
    expect(m).toMatchObject({ emitted: 1_000, delivered: 1_000, dropped: 0, pending: 0 });
    expect(m.spilled).toBeGreaterThan(0);
    expect(new Set(sink.acked).size).toBe(1_000);
  });

  it("drops as spill-full only beyond the disk budget, and never holds more than the budget on disk", async () => {
    const dir = spillDir();
    const sink = new SwitchSink();
    const pipeline = await pipelineWithFullBudget(dir, sink, (m) => m.spill?.pending === m.spilled);
    const m = pipeline.getMetrics();
    expect(balanced(m)).toBe(true);
    expect(m.dropped).toBe(m.droppedByReason["spill-full"]);
    const onDisk = () => segmentFiles(dir).reduce((sum, file) => sum + statSync(file).size, 0);
    // Half-open trials replay a batch and write it again meanwhile: compare once the writer is between writes.
    await until(() => pipeline.getMetrics().spill?.bytes === onDisk(), "the files to match the metrics");
    expect(onDisk()).toBeLessThanOrEqual(maxBytes);
    sink.up = true;
    expect(await pipeline.flush(10_000)).toBe(true);
    const after = pipeline.getMetrics();
    expect(after.delivered + after.dropped).toBe(1_000);
    expect(new Set(sink.acked).size).toBe(after.delivered);
  });

  it("moves the memory queue to disk at shutdown while the sink is down, and the next pipeline delivers it with the same event ids", async () => {
    const dir = spillDir();
    const first = new DeliveryPipeline(new SwitchSink("orders"), options(dir), quiet);
    await enqueueSteadily(first, 0, 500);
    await first.shutdown(2_000);
    const m = first.getMetrics();
    expect(m).toMatchObject({ emitted: 500, delivered: 0, dropped: 0, pending: 500 });
    expect(m.spill?.pending).toBe(500);
    expect(balanced(m)).toBe(true);

    const sink = new SwitchSink("orders");
    sink.up = true;
    const second = pipelineFor(sink, options(dir));
    await until(() => sink.acked.length >= 500 && second.getMetrics().pending === 0, "the leftovers");
    const r = second.getMetrics();
    expect(r).toMatchObject({ emitted: 0, recovered: 500, delivered: 500, pending: 0 });
    expect(balanced(r)).toBe(true);
    expect(new Set(sink.acked)).toEqual(new Set(Array.from({ length: 500 }, (_, i) => `event-${i}`)));
    await until(() => segmentFiles(dir).length === 0, "segments to be deleted");
  });

  it("skips and counts a torn last record and a corrupted one in leftovers, delivering every intact event", async () => {
    const dir = spillDir();
    const first = new DeliveryPipeline(
      new SwitchSink("torn"),
      options(dir, { spill: { directory: dir, fsync: "never" } }),
      quiet,
    );
    await enqueueSteadily(first, 0, 100);
    await first.shutdown(2_000);
    const [file] = segmentFiles(dir);
    expect(file).toBeDefined();
    const data = readFileSync(file!);
    // Flip a byte inside the first record's payload, and cut the last record short.
    data[SEGMENT_HEADER.length + 12 + 3]! ^= 0x40;
    writeFileSync(file!, data);
    truncateSync(file!, data.length - 5);

    const sink = new SwitchSink("torn");
    sink.up = true;
    const second = pipelineFor(sink, options(dir));
    await until(
      () => second.getMetrics().recovered === 98 && second.getMetrics().pending === 0,
      "the intact leftovers",
    );
    const m = second.getMetrics();
    expect(m.spill?.corrupted).toBe(2);
    expect(m.delivered).toBe(98);
    expect(sink.acked).not.toContain("event-0");
    expect(sink.acked).not.toContain("event-99");
    expect(balanced(m)).toBe(true);
  });

  it("gives two live pipelines on one directory separate slots, so neither replays the other's segments", async () => {
    const dir = spillDir();
    const a = pipelineFor(new SwitchSink("shared"), options(dir));
    const b = pipelineFor(new SwitchSink("shared"), options(dir));
    expect(a.getMetrics().spill?.directory).not.toBe(b.getMetrics().spill?.directory);
    await enqueueSteadily(a, 0, 300);
    await until(
      () => a.getMetrics().spill?.pending === a.getMetrics().spilled && a.getMetrics().spilled > 0,
      "a's spill",
    );
    expect(b.getMetrics().recovered).toBe(0);
    expect(readFileSync(join(a.getMetrics().spill!.directory, "lock"), "utf8")).toContain(
      String(process.pid),
    );
  });

  it("lets a sink's own spill refine the default one (its own name) without repeating the directory", async () => {
    const directory = spillDir();
    const a = new SwitchSink();
    const b = new SwitchSink();
    configure({
      delivery: { spill: { directory } },
      sinks: [
        { sink: a, delivery: { spill: { name: "own-a" } } },
        { sink: b, delivery: { spill: false } },
      ],
    });
    const [metricsA, metricsB] = getMetrics();
    expect(dirname(metricsA?.spill?.directory ?? "")).toBe(join(directory, "own-a"));
    expect(metricsB?.spill).toBeNull();
    await shutdown(1_000);
    // Without a default spill, a sink's own spill needs its directory, named at the sink's path.
    let path: string | undefined;
    try {
      configure({ sinks: [{ sink: new SwitchSink(), delivery: { spill: { name: "own" } } }] });
    } catch (error) {
      path = (error as ConfigurationError).issues[0]?.path;
    }
    expect(path).toBe("sinks[0].delivery.spill.directory");
  });

  it("is a ConfigurationError at configure() when the directory cannot be written", async () => {
    const parent = spillDir();
    const file = join(parent, "a-file");
    writeFileSync(file, "");
    const sink = new SwitchSink();
    expect(() =>
      configure({ sinks: [{ sink, delivery: { spill: { directory: join(file, "spill") } } }] }),
    ).toThrow(ConfigurationError);
    try {
      configure({ sinks: [{ sink, delivery: { spill: { directory: join(file, "spill") } } }] });
    } catch (error) {
      expect((error as ConfigurationError).message).toMatch(/spill directory .* is not a directory/);
      expect((error as ConfigurationError).issues[0]?.path).toBe("sinks[0].delivery.spill.directory");
    }
    expect(getMetrics()).toEqual([]);
  });

  it("is a ConfigurationError for a read-only directory (checked as an unprivileged user)", () => {
    const readOnly = spillDir();
    chmodSync(readOnly, 0o555);
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    const hook = writeTsResolveHook(spillDir());
    const pipelinePath = new URL("../delivery-pipeline.ts", import.meta.url).pathname;
    const script = join(spillDir(), "child.ts");
    writeFileSync(
      script,
      `import { DeliveryPipeline } from ${JSON.stringify(pipelinePath)};
try {
  new DeliveryPipeline({ name: "ro", send: async () => {}, close: async () => {} }, { spill: { directory: ${JSON.stringify(join(readOnly, "spill"))} } });
  console.log("configured");
} catch (error) { console.log(error.name + ": " + error.message); }
`,
    );
    for (const d of spillDirs) chmodSync(d, 0o755);
    chmodSync(readOnly, 0o555);
    const result = spawnSync(process.execPath, ["--import", hook, script], {
      encoding: "utf8",
      timeout: 20_000,
      ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toMatch(
      /^ConfigurationError: spill directory .* is not writable \(permission denied\)/,
    );
    expect(existsSync(join(readOnly, "spill"))).toBe(false);
  });

  it("keeps accepting while the disk writer catches up, and the slot directory is released at shutdown", async () => {
    const dir = spillDir();
    const pipeline = new DeliveryPipeline(new SwitchSink("release"), options(dir), quiet);
    for (let i = 0; i < 200; i++) pipeline.enqueue(ev(i));
    const slot = pipeline.getMetrics().spill!.directory;
    expect(existsSync(join(slot, "lock"))).toBe(true);
    await pipeline.shutdown(2_000);
    expect(existsSync(join(slot, "lock"))).toBe(false);
    mkdirSync(join(dir, "unrelated"), { recursive: true });
  });
  it("resolves flush() once the leftovers are delivered when the last leftover holds no event (a kill right after a new segment was started)", async () => {
    const dir = spillDir();
    const first = new DeliveryPipeline(new SwitchSink("empty-last"), options(dir), quiet);
    await enqueueSteadily(first, 0, 300);
    await first.shutdown(2_000);
    const last = segmentFiles(dir).at(-1)!;
    const empty = join(dirname(last), segmentFileName(Number(basename(last, ".seg")) + 1));
    writeFileSync(empty, "");

    const sink = new SwitchSink("empty-last");
    sink.up = true;
    // The empty file is read only after every intact event was delivered, as on a busy disk: its reading is
    // then the last thing that happens.
    const readFile = promises.readFile;
    vi.spyOn(promises, "readFile").mockImplementation((async (...args: Parameters<typeof readFile>) => {
      if (args[0] === empty) await until(() => sink.acked.length === 300, "the intact leftovers");
      return readFile(...args);
    }) as typeof readFile);
    const second = pipelineFor(sink, options(dir));
    expect(await second.flush(5_000)).toBe(true);
    const m = second.getMetrics();
    expect(m).toMatchObject({ emitted: 0, recovered: 300, delivered: 300, dropped: 0, pending: 0 });
    expect(balanced(m)).toBe(true);
    // flush() also waited for the files to go.
    expect(segmentFiles(dir)).toEqual([]);
    expect(m.spill?.bytes).toBe(0);
  });

  it("counts a settled segment against maxBytes until its file is deleted, so the files never exceed maxBytes while replay frees room", async () => {
    const dir = spillDir();
    const sink = new SwitchSink();
    const pipeline = await pipelineWithFullBudget(dir, sink, (m) => m.spill?.buffered === 0);
    // Deleting a replayed segment takes its time (held here until released).
    const rm = promises.rm;
    const deletions: (() => void)[] = [];
    vi.spyOn(promises, "rm").mockImplementation(
      ((...args: Parameters<typeof rm>) =>
        new Promise<void>((resolve, reject) => {
          deletions.push(() => rm(...args).then(resolve, reject));
        })) as typeof rm,
    );
    sink.up = true;
    sink.delayMs = 20;
    await until(() => deletions.length > 0, "a replayed segment to be deleted");
    // New events that find the queue full go to the spill meanwhile.
    for (let i = 1_000; i < 1_300; i++) pipeline.enqueue(ev(i));
    const onDisk = () => segmentFiles(dir).reduce((sum, file) => sum + statSync(file).size, 0);
    // Give the writer its chance to write them (it may not: the budget is not free until the file is gone).
    await until(() => pipeline.getMetrics().spill?.buffered === 0, "the writer", 500).catch(() => undefined);
    expect(onDisk()).toBeLessThanOrEqual(maxBytes);
    vi.mocked(promises.rm).mockImplementation(rm);
    for (const release of deletions.splice(0)) release();
    expect(await pipeline.flush(10_000)).toBe(true);
    const m = pipeline.getMetrics();
    expect(m.delivered + m.dropped).toBe(1_300);
    expect(m.dropped).toBe(m.droppedByReason["spill-full"]);
    expect(balanced(m)).toBe(true);
    expect(segmentFiles(dir)).toEqual([]);
  });

  it("keeps the queue's events (the oldest) in memory when the circuit opens with the disk budget full: only the newest are dropped as spill-full", async () => {
    const dir = spillDir();
    const sink = new SwitchSink();
    let connectionFails!: () => void;
    sink.hold = new Promise<void>((resolve) => {
      connectionFails = resolve;
    });
    const pipeline = pipelineFor(
      sink,
      options(dir, {
        circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 30 },
        spill: { directory: dir, maxBytes: 8_192, segmentBytes: 2_048 },
      }),
    );
    // The first send hangs while the queue fills, and the spill takes the rest until its budget is full.
    await enqueueSteadily(pipeline, 0, 1_000);
    await until(
      () =>
        pipeline.getMetrics().droppedByReason["spill-full"] > 0 &&
        pipeline.getMetrics().spill?.buffered === 0,
      "the budget to fill",
    );
    expect(pipeline.getMetrics()).toMatchObject({ breakerState: "closed", inFlight: 50 });
    sink.hold = undefined;
    connectionFails();
    await until(() => pipeline.getMetrics().breakerState !== "closed", "the circuit to open");
    sink.up = true;
    expect(await pipeline.flush(10_000)).toBe(true);
    const m = pipeline.getMetrics();
    expect(m.delivered + m.droppedByReason["spill-full"]).toBe(1_000);
    expect(m.dropped).toBe(m.droppedByReason["spill-full"]);
    expect(balanced(m)).toBe(true);
    // What was delivered is the oldest events, without a gap.
    const delivered = new Set(sink.acked);
    expect(delivered.size).toBe(m.delivered);
    expect(delivered).toEqual(new Set(Array.from({ length: m.delivered }, (_, i) => `event-${i}`)));
  });
});
