// The parent side of a reader group: starts reader processes (each a `serveReader` worker, see
// reader-process.mjs), follows their progress, kills or stops them, and checks the union of their logs.
// Shared by the sink packages' consumer-group tests and their scale-out benchmarks.
import { fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STDERR_KEPT = 4_096;

/** One reader process. */
export class ReaderProcess {
  handled = 0;
  /** The reader said it is consuming (readers with a `ready()` only). */
  ready = false;
  firstAt = undefined;
  lastAt = undefined;
  /** The last `stopped` message, once `run()` ended. */
  final = undefined;
  error = undefined;
  stderr = "";

  constructor(index, worker, logPath, config, env) {
    this.index = index;
    this.logPath = logPath;
    this.child = fork(worker, [], {
      env: { ...process.env, ...env, STREAMLL_READER_CONFIG: JSON.stringify({ ...config, logPath }) },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.pid = this.child.pid;
    this.child.stderr.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-STDERR_KEPT);
    });
    this.child.on("message", (message) => {
      if (message.type === "progress" || message.type === "stopped") {
        this.handled = message.handled;
        this.firstAt = message.firstAt;
        this.lastAt = message.lastAt;
      }
      if (message.type === "ready") this.ready = true;
      if (message.type === "stopped") this.final = message;
      if (message.type === "error") this.error = message.message;
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** A crash: no cleanup runs in the process. */
  async kill() {
    this.child.kill("SIGKILL");
    return this.exited;
  }

  /** A graceful leave: SIGTERM, which calls the reader's `stop()`. Resolves with the exit. */
  async terminate(timeoutMs = 60_000) {
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** The ids this process logged, in order. */
  ids() {
    let text;
    try {
      text = readFileSync(this.logPath, "utf8");
    } catch {
      return [];
    }
    const ids = text.split("\n");
    ids.pop();
    return ids;
  }

  describe() {
    const state = this.alive ? "running" : "exited";
    const tail = this.stderr.trim() === "" ? "" : `; stderr: ${this.stderr.trim()}`;
    return `reader ${this.index} (pid ${this.pid}, ${state}, handled ${this.handled})${tail}`;
  }
}

/**
 * Reader processes of one consumer group, each running `worker` with `config` (`reader`: the reader's options,
 * `handlerDelayMs`: async work per event). Logs go to a fresh temporary directory, removed by `close()`.
 */
export class ReaderGroup {
  readers = [];

  constructor({ worker, config, env = {}, log = true }) {
    this.worker = worker;
    this.config = config;
    this.env = env;
    this.dir = mkdtempSync(join(tmpdir(), "streamll-readers-"));
    this.log = log;
  }

  /** Starts one more reader process (joining the group). */
  add(overrides = {}) {
    const index = this.readers.length;
    const logPath = this.log ? join(this.dir, `reader-${index}.log`) : undefined;
    const reader = new ReaderProcess(index, this.worker, logPath, { ...this.config, ...overrides }, this.env);
    this.readers.push(reader);
    return reader;
  }

  start(count) {
    return Array.from({ length: count }, () => this.add());
  }

  /** Events handled by all processes so far (as last reported; duplicates included). */
  get handled() {
    return this.readers.reduce((sum, reader) => sum + reader.handled, 0);
  }

  /** Waits until the processes reported `count` handled events in total; fails early when one errored. */
  async waitForHandled(count, timeoutMs = 120_000) {
    await this.waitFor(() => this.handled >= count, `${count} handled events`, timeoutMs);
  }

  /** Waits until the union of the logs holds every id of `expectedIds`. */
  async waitForIds(expectedIds, timeoutMs = 120_000) {
    const expected = new Set(expectedIds);
    let checkedAt = 0;
    const covered = () => {
      // Reading the logs is cheap but not free: at most every 500 ms. (The reported counts cannot gate it: a
      // killed process may have logged events it never reported.)
      if (Date.now() - checkedAt < 500) return false;
      checkedAt = Date.now();
      const seen = new Set();
      for (const reader of this.readers) for (const id of reader.ids()) if (expected.has(id)) seen.add(id);
      return seen.size === expected.size;
    };
    await this.waitFor(covered, `all ${expected.size} ids to be handled`, timeoutMs);
  }

  async waitFor(condition, what, timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      const failed = this.readers.find((reader) => reader.error !== undefined);
      if (failed) throw new Error(`waiting for ${what}: ${failed.describe()} failed: ${failed.error}`);
      if (Date.now() > deadline) {
        const states = this.readers.map((reader) => reader.describe()).join("\n  ");
        throw new Error(`timed out waiting for ${what}:\n  ${states}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops every running process gracefully (SIGTERM) and waits for them to exit. */
  async stopAll(timeoutMs = 60_000) {
    await Promise.all(this.readers.filter((reader) => reader.alive).map((r) => r.terminate(timeoutMs)));
  }

  /**
   * The union of the logs against the ids that were written: which ids are missing, which were handled more
   * than once and by which processes (in log order of the processes), and how many each process handled.
   */
  analyze(expectedIds) {
    const byId = new Map();
    const perReader = [];
    for (const reader of this.readers) {
      const ids = reader.ids();
      perReader.push(ids.length);
      for (const id of ids) {
        const seen = byId.get(id);
        if (seen === undefined) byId.set(id, [reader.index]);
        else seen.push(reader.index);
      }
    }
    const expected = new Set(expectedIds);
    const missing = [...expected].filter((id) => !byId.has(id));
    const unexpected = [...byId.keys()].filter((id) => !expected.has(id));
    const duplicates = [];
    for (const [id, readers] of byId) if (readers.length > 1) duplicates.push({ id, readers });
    const extraDeliveries = duplicates.reduce((sum, d) => sum + d.readers.length - 1, 0);
    return { unique: byId.size, missing, unexpected, duplicates, extraDeliveries, perReader };
  }

  /** Kills what still runs and removes the logs. */
  async close() {
    await Promise.all(this.readers.filter((reader) => reader.alive).map((reader) => reader.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One line for a test's output: how the ids were shared, and what was missing or handled twice. */
export function summarize(analysis) {
  return (
    `${analysis.unique} ids, per reader ${analysis.perReader.join("/")}, ${analysis.missing.length} missing, ` +
    `${analysis.extraDeliveries} duplicate deliveries`
  );
}
