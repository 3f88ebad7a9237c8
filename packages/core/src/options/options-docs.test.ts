// The README's option tables list exactly what the validator accepts: an option added to a schema and not to
// its table (or a table row for an option that is gone) fails here.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createRefreshingCredentials } from "../auth/credential-cache";
import { decodeEvent } from "../events/decode-event";
import { EventDeduplicator } from "../events/event-deduplicator";
import { instrument } from "../instrument/instrument";
import { configure } from "../instrument/runtime";
import { trace } from "../instrument/trace";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { MemorySink } from "../sinks/memory-sink";
import { TerminalSink } from "../sinks/terminal-sink";
import { computeCodeSignature, computeCodeSignatureDetails } from "../version/code-signature";
import { compareEventFiles, compareEvents } from "../version/compare/compare-versions";
import { detectGitCommit } from "../version/git-commit";
import { documentedOptionKeys, optionsTableProblems } from "./options-table-check";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const DELIVERY_GUIDE = readFileSync(
  new URL("../../../../docs/concepts/delivery.md", import.meta.url),
  "utf8",
);

const EVENTS_GUIDE = readFileSync(new URL("../../../../docs/concepts/events.md", import.meta.url), "utf8");
const VERSION_GUIDE = readFileSync(
  new URL("../../../../docs/guides/version-tracking.md", import.meta.url),
  "utf8",
);

describe("option tables of the events and version-tracking guides", () => {
  it("list every option of decodeEvent(), EventDeduplicator and the version functions, and nothing else", async () => {
    const step = function step() {};
    expect(
      await optionsTableProblems(EVENTS_GUIDE, [
        { name: "decodeEvent", call: (options) => decodeEvent("{}", options as never) },
        { name: "EventDeduplicator", call: (options) => new EventDeduplicator(options as never) },
      ]),
    ).toEqual([]);
    expect(
      await optionsTableProblems(VERSION_GUIDE, [
        { name: "detectGitCommit", call: (options) => detectGitCommit(options as never) },
        { name: "computeCodeSignature", call: (options) => computeCodeSignature(step, options as never) },
        {
          name: "computeCodeSignature",
          call: (options) => computeCodeSignatureDetails(step, options as never),
        },
        { name: "compareEvents", call: (options) => compareEvents([], options as never) },
        { name: "compareEvents", call: (options) => compareEventFiles([], options as never) },
        {
          name: "versionTracking",
          call: (options) => configure({ versionTracking: options as never }),
        },
      ]),
    ).toEqual([]);
  });
});

describe("option tables of the delivery guide", () => {
  it("list every delivery option, and nothing else", async () => {
    const nested = "documented key by key in dotted rows (retry.maxAttempts, …)";
    expect(
      await optionsTableProblems(DELIVERY_GUIDE, [
        {
          name: "delivery",
          call: (options) => configure({ delivery: options as never }),
          undocumented: { retry: nested, circuitBreaker: nested },
        },
      ]),
    ).toEqual([]);
  });

  it("list every option createRefreshingCredentials() accepts, and nothing else", async () => {
    expect(
      await optionsTableProblems(DELIVERY_GUIDE, [
        {
          name: "createRefreshingCredentials",
          call: (options) =>
            createRefreshingCredentials(async () => ({ password: "x" }), options as never).close(),
        },
      ]),
    ).toEqual([]);
  });
});

describe("option tables of the core README", () => {
  it("list every option configure() accepts, and nothing else", async () => {
    expect(
      await optionsTableProblems(README, [
        { name: "configure", call: (options) => configure(options as never) },
      ]),
    ).toEqual([]);
  });

  it("list every option of the built-in sinks, instrument() and trace(), and nothing else", async () => {
    expect(
      await optionsTableProblems(README, [
        { name: "TerminalSink", call: (options) => new TerminalSink(options as never) },
        { name: "JsonlFileSink", call: (options) => new JsonlFileSink(options as never) },
        { name: "MemorySink", call: (options) => new MemorySink(options as never) },
        { name: "instrument", call: (options) => instrument(function step() {}, options as never) },
        { name: "trace", call: (options) => trace("step", () => undefined, options as never) },
      ]),
    ).toEqual([]);
  });

  it("catch a missing row and a row for an option that does not exist", async () => {
    const table =
      "<!-- options: t -->\n\n| Option | x |\n| - | - |\n| `sinks` / `tags` | a |\n| `gone` | b |\n";
    expect(documentedOptionKeys(table, "t")).toEqual(["sinks", "tags", "gone"]);
    const problems = await optionsTableProblems(table, [
      { name: "t", call: (options) => configure(options as never) },
    ]);
    expect(problems[0]).toMatch(/^t: accepted but not in the table: delivery, includeInputs/);
    expect(problems[1]).toBe("t: in the table but not accepted: gone");
    expect(await optionsTableProblems("", [{ name: "t", call: () => undefined }])).toEqual([
      "t: no table marked <!-- options: t -->",
    ]);
  });
});
