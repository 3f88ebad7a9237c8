import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { encodeEvent, JsonlFileSink, type StreamllEvent } from "@streamll/core";
import { afterAll, describe, expect, it } from "vitest";
import { execution, jsonl } from "../../test/support/events";
import { waitUntil } from "../../test/support/wait";
import { createFollowerCore, type FollowState, followFile } from "./follow-file";
import { MAX_LINE_CHARS } from "./line-splitter";
import { readLines } from "./read-stream";

const dir = mkdtempSync(join(tmpdir(), "streamll-viewer-follow-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function collector() {
  const lines: string[] = [];
  let skipped = 0;
  return {
    sink: { line: (text: string) => lines.push(text), skipped: () => void skipped++ },
    lines,
    ids: () => lines.map((line) => (JSON.parse(line) as StreamllEvent).event_id),
    skipped: () => skipped,
  };
}

const ids = (events: readonly StreamllEvent[]) => events.map((event) => event.event_id);
const inodeOf = (path: string) => statSync(path).ino;

describe("followFile", () => {
  it("reads the file, then every line appended later, holding back a line until its newline arrives", async () => {
    const path = join(dir, "grow.jsonl");
    const first = execution();
    writeFileSync(path, jsonl(first));
    const seen = collector();
    const follower = followFile(path, seen.sink, { pollMs: 20 });
    await waitUntil(() => seen.lines.length === first.length, "the existing lines");
    const second = execution();
    const text = jsonl(second);
    appendFileSync(path, text.slice(0, 40));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.lines).toHaveLength(first.length);
    appendFileSync(path, text.slice(40));
    await waitUntil(() => seen.lines.length === first.length + second.length, "the appended lines");
    expect(seen.ids()).toEqual(ids([...first, ...second]));
    await follower.close();
  });

  it("follows JsonlFileSink's rotation without losing or repeating a line, and reads the rotated files first", async () => {
    const path = join(dir, "rotating.jsonl");
    const sink = new JsonlFileSink({ path, rotate: { maxBytes: 4_000, maxFiles: 3 } });
    const written: StreamllEvent[] = [];
    const write = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const events = execution();
        written.push(...events);
        await sink.send(events.map((event) => encodeEvent(event)));
      }
    };
    await write(2);
    const seen = collector();
    const states: FollowState[] = [];
    const follower = followFile(path, seen.sink, { pollMs: 15, onState: (state) => states.push(state) });
    // Rotations happen while the follower reads: several files' worth, in small steps.
    for (let round = 0; round < 30; round++) {
      await write(1);
      await new Promise((resolve) => setTimeout(resolve, round % 3 === 0 ? 0 : 30));
    }
    await waitUntil(() => seen.lines.length >= written.length, "every written line");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.ids()).toEqual(ids(written));
    expect(seen.skipped()).toBe(0);
    await follower.close();
    await sink.close();

    // A new follower starts with what the rotated files still hold (oldest first), then the active file.
    const again = collector();
    const restarted = followFile(path, again.sink, { pollMs: 15 });
    await waitUntil(() => again.lines.length > 0, "history");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const kept = again.ids();
    expect(kept.length).toBeLessThan(written.length);
    expect(kept).toEqual(ids(written).slice(-kept.length));
    await restarted.close();
    expect(states[0]).toEqual({ kind: "reading" });
  });

  it("waits for a missing file, follows a file deleted and recreated, and re-reads one truncated in place", async () => {
    const path = join(dir, "later.jsonl");
    const seen = collector();
    const states: FollowState[] = [];
    const follower = followFile(path, seen.sink, { pollMs: 15, onState: (state) => states.push(state) });
    await waitUntil(() => states.some((state) => state.kind === "waiting"), "waiting");
    const a = execution();
    writeFileSync(path, jsonl(a));
    await waitUntil(() => seen.lines.length === a.length, "the new file");
    rmSync(path);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const b = execution();
    writeFileSync(path, jsonl(b));
    await waitUntil(() => seen.lines.length === a.length + b.length, "the recreated file");
    truncateSync(path, 0);
    const c = execution();
    await new Promise((resolve) => setTimeout(resolve, 60));
    appendFileSync(path, jsonl(c));
    await waitUntil(() => seen.lines.length === a.length + b.length + c.length, "the truncated file");
    expect(seen.ids()).toEqual(ids([...a, ...b, ...c]));
    await follower.close();
  });

  it("drops a line cut off by a rotation and a line too long to hold, counting both", async () => {
    const path = join(dir, "torn.jsonl");
    const events = execution();
    writeFileSync(path, `${jsonl(events.slice(0, 1))}{"cut off`);
    const seen = collector();
    const follower = followFile(path, seen.sink, { pollMs: 15 });
    await waitUntil(() => seen.lines.length === 1, "the first line");
    renameSync(path, join(dir, "torn.1.jsonl"));
    writeFileSync(path, `${"z".repeat(MAX_LINE_CHARS + 10)}\n${jsonl(events.slice(1))}`);
    await waitUntil(() => seen.lines.length === events.length, "the lines after the rotation");
    expect(seen.skipped()).toBe(2);
    expect(seen.ids()).toEqual(ids(events));
    await follower.close();
  });
});

/** Checks driven by hand: each `check()` is one poll of followFile, so what happens between two polls is exact. */
describe("followFile's checks", () => {
  async function rotatingSink(name: string, maxFiles: number) {
    const path = join(dir, name);
    const sink = new JsonlFileSink({ path, rotate: { maxBytes: 2_000, maxFiles } });
    const written: StreamllEvent[] = [];
    /** Writes one execution (one batch). */
    const write = async () => {
      const events = execution();
      written.push(...events);
      await sink.send(events.map((event) => encodeEvent(event)));
    };
    /** Writes executions until the sink rotated `rotations` more times. */
    const rotate = async (rotations: number) => {
      for (let done = 0; done < rotations; ) {
        const before = existsSync(path) ? inodeOf(path) : undefined;
        await write();
        if (before !== undefined && inodeOf(path) !== before) done++;
      }
    };
    return { path, sink, written, write, rotate };
  }

  it("reads every file rotated between two checks, oldest first, each once, then the new file", async () => {
    const { path, sink, written, write, rotate } = await rotatingSink("many-rotations.jsonl", 10);
    await write();
    const seen = collector();
    const follower = createFollowerCore(path, seen.sink, { history: false });
    await follower.check();
    expect(seen.ids()).toEqual(ids(written));
    // Four rotations before the next check: the file the follower has open is now events.4, and events.3 …
    // events.1 were written (and rotated away) after it.
    await rotate(4);
    expect(existsSync(join(dir, "many-rotations.4.jsonl"))).toBe(true);
    await follower.check();
    expect(seen.ids()).toEqual(ids(written));
    // And again, with lines appended to the new file after the rotation.
    await rotate(2);
    await write();
    await follower.check();
    await follower.check();
    expect(seen.ids()).toEqual(ids(written));
    expect(seen.skipped()).toBe(0);
    await follower.close();
    await sink.close();
  });

  it("waits for the file after a rotation renamed it away, then reads the rotated file's rest and the new file", async () => {
    const path = join(dir, "gap.jsonl");
    const first = execution();
    writeFileSync(path, jsonl(first.slice(0, 2)));
    const seen = collector();
    const states: FollowState[] = [];
    const follower = createFollowerCore(path, seen.sink, { onState: (state) => states.push(state) });
    await follower.check();
    // Written, then rotated (renamed to .1) with no new file yet.
    appendFileSync(path, jsonl(first.slice(2)));
    renameSync(path, join(dir, "gap.1.jsonl"));
    await follower.check();
    expect(seen.ids()).toEqual(ids(first));
    expect(states.at(-1)?.kind).toBe("waiting");
    const second = execution();
    writeFileSync(path, jsonl(second));
    await follower.check();
    expect(seen.ids()).toEqual(ids([...first, ...second]));
    expect(states.at(-1)).toEqual({ kind: "reading" });
    await follower.close();
  });

  it("starts with the rotated files, oldest first, and follows rotations that happen while it reads them", async () => {
    const { path, sink, written, rotate } = await rotatingSink("history-rotations.jsonl", 20);
    await rotate(3);
    const seen = collector();
    const follower = createFollowerCore(path, seen.sink);
    await follower.check();
    await rotate(3);
    await follower.check();
    expect(seen.ids()).toEqual(ids(written));
    await follower.close();
    await sink.close();
  });

  it("reads the files rotated before the file was first seen, when it did not exist at the start", async () => {
    const { path, sink, written, rotate } = await rotatingSink("late.jsonl", 10);
    const seen = collector();
    const states: FollowState[] = [];
    const follower = createFollowerCore(path, seen.sink, { onState: (state) => states.push(state) });
    await follower.check();
    expect(states).toEqual([{ kind: "waiting", reason: `${path} does not exist (yet)` }]);
    await rotate(3);
    await follower.check();
    expect(seen.ids()).toEqual(ids(written));
    await follower.close();
    await sink.close();
  });

  it("goes on with the file itself when the one it read was deleted (pushed past maxFiles), repeating nothing", async () => {
    const { path, sink, written, write, rotate } = await rotatingSink("overrun.jsonl", 2);
    await write();
    const seen = collector();
    const follower = createFollowerCore(path, seen.sink, { history: false });
    await follower.check();
    await rotate(4);
    await follower.check();
    // The rest of the file it had open, then the file itself: in the order written, nothing twice.
    const all = ids(written);
    const positions = seen.ids().map((id) => all.indexOf(id));
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect(new Set(positions).size).toBe(positions.length);
    const active = readFileSync(path, "utf8").trim().split("\n");
    expect(seen.lines.slice(-active.length)).toEqual(active);
    await follower.close();
    await sink.close();
  });

  it("re-reads a file truncated in place and rewritten larger before the next check", async () => {
    const path = join(dir, "rewritten.jsonl");
    const a = execution();
    writeFileSync(path, jsonl(a));
    const seen = collector();
    const follower = createFollowerCore(path, seen.sink, { history: false });
    await follower.check();
    const b = [...execution(), ...execution()];
    writeFileSync(path, jsonl(b));
    await follower.check();
    expect(seen.ids()).toEqual(ids([...a, ...b]));
    // Rewritten with the same first line but different lines after it: read again from the start.
    const c = [...b.slice(0, 1), ...execution(), ...execution()];
    writeFileSync(path, jsonl(c));
    await follower.check();
    expect(seen.ids()).toEqual(ids([...a, ...b, ...c]));
    // A plain append is not taken for a rewrite.
    const d = execution();
    appendFileSync(path, jsonl(d));
    await follower.check();
    expect(seen.ids()).toEqual(ids([...a, ...b, ...c, ...d]));
    expect(seen.skipped()).toBe(0);
    await follower.close();
  });
});

describe("readLines (stdin)", () => {
  it("reads lines split anywhere, including inside multi-byte characters, and a last line without newline", async () => {
    const events = execution({ inputs: { question: "ünïcödé — 日本語 🚀" } });
    const bytes = Buffer.from(jsonl(events).trimEnd(), "utf8");
    const stream = new PassThrough();
    const seen = collector();
    const done = readLines(stream, seen.sink);
    for (let offset = 0; offset < bytes.length; offset += 7) stream.write(bytes.subarray(offset, offset + 7));
    stream.end();
    await done;
    expect(seen.ids()).toEqual(ids(events));
    expect(JSON.parse(seen.lines[0]!).data.inputs.question).toBe("ünïcödé — 日本語 🚀");
  });
});

describe("followFile on a path that is not a regular file", () => {
  it.each([
    ["a directory", (path: string) => mkdirSync(path), "is a directory"],
    ["a FIFO without a writer", (path: string) => execFileSync("mkfifo", [path]), "is not a regular file"],
  ])("reports %s once, however often it checks, and closes at once", async (_, make, message) => {
    const path = join(dir, `odd-${Math.random().toString(36).slice(2)}`);
    make(path);
    const seen = collector();
    const states: FollowState[] = [];
    const follower = createFollowerCore(path, seen.sink, { history: false, onState: (s) => states.push(s) });
    // A FIFO is opened without waiting for a writer, so each check returns (else this would hang).
    for (let i = 0; i < 5; i++) expect(await follower.check()).toBe(false);
    expect(states).toHaveLength(1);
    expect(states[0]).toMatchObject({ kind: "failed" });
    expect(states[0]?.kind === "failed" && states[0].error).toContain(message);
    expect(seen.lines).toEqual([]);
    await follower.close();
  });
});
