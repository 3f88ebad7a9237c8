import { describe, expect, it } from "vitest";
import { execution, ragExecution } from "../../test/support/events";
import type { PriceTable } from "../protocol";
import { formatCountOf, formatDuration, formatOffset, formatSource, formatTokens } from "./format";
import {
  inTimeOrder,
  matches,
  newestFirst,
  type Span,
  spanExtent,
  spanTree,
  streamText,
  summarize,
  usageCost,
  usageTokens,
  ViewerModel,
  type WireEvent,
} from "./model";

const asWire = (events: readonly object[]) => JSON.parse(JSON.stringify(events)) as WireEvent[];
const NO_FILTER = { module: "", eventType: "", status: "", version: "", search: "" };

describe("the page's model", () => {
  it("builds the span tree with durations, streamed text, usage tokens and cost", () => {
    const model = new ViewerModel();
    const events = asWire(ragExecution());
    model.apply(events);
    const run = model.executions.get(events[0]!.execution_id)!;
    const tree = spanTree(run);
    expect(tree.map(({ span, depth }) => [span.operation ?? span.module, depth])).toEqual([
      ["RAGPipeline", 0],
      ["retrieval", 1],
      ["LanguageModel", 1],
    ]);
    expect(tree[0]!.span.durationMs).toBe(120);
    const model_ = tree[2]!.span;
    expect(streamText(model_.streams.get("answer")!)).toBe("Events travel through a bounded queue.");
    const summary = summarize(
      run,
      { "gpt-4o-mini": { inputPerMillion: 0.15, outputPerMillion: 0.6 } },
      Date.now(),
    );
    expect(summary).toMatchObject({
      module: "RAGPipeline",
      status: "ok",
      durationMs: 120,
      tokens: 1500,
      tokensFrom: "usage",
      codeSignature: "sig-v1-aaaaaaaa",
      moduleVersion: "qa-service@1.2.0",
    });
    expect(summary.cost).toBeCloseTo((1200 * 0.15 + 300 * 0.6) / 1e6, 12);
    // Without a price: no cost, the tokens are still counted.
    expect(summarize(run, {}, Date.now()).cost).toBeNull();
  });

  it("puts late tokens in their place, shows running spans and errors with their stack", () => {
    const model = new ViewerModel();
    const events = asWire(execution({ tokens: ["a", "b", "c"], running: true }));
    const [start, t0, t1, t2] = events;
    model.apply([start!, t0!, t2!]);
    model.apply([t1!]);
    const run = model.executions.get(start!.execution_id)!;
    const root = spanTree(run)[0]!.span;
    expect(streamText(root.streams.get("answer")!)).toBe("abc");
    const summary = summarize(run, {}, Date.parse(start!.timestamp) + 500);
    expect(summary).toMatchObject({ status: "running", durationMs: 500, tokens: 3, tokensFrom: "stream" });

    const failed = asWire(execution({ error: "boom" }));
    model.apply(failed);
    const failedRun = model.executions.get(failed[0]!.execution_id)!;
    const span = spanTree(failedRun)[0]!.span;
    expect(span.status).toBe("error");
    expect(span.error).toMatchObject({ type: "TestError", message: "boom" });
    expect(span.error?.stack).toContain("at QaModule.forward");
  });

  it("lists a span's events by timestamp, ties and all else in arrival order", () => {
    const model = new ViewerModel();
    const [start, t0, t1, end] = asWire(execution({ tokens: ["a", "b"], durationMs: 30 }));
    // The end arrives first; the second token carries the first's timestamp (a tie keeps arrival order).
    const tie = { ...t1!, timestamp: t0!.timestamp };
    model.apply([end!, tie, start!, t0!]);
    const run = model.executions.get(start!.execution_id)!;
    const span = spanTree(run)[0]!.span;
    const ids = (indexes: readonly number[]) => indexes.map((index) => run.events[index]!.event_id);
    expect(ids(span.events)).toEqual([end, tie, start, t0].map((event) => event!.event_id));
    expect(ids(inTimeOrder(run.events, span.events))).toEqual(
      [start, tie, t0, end].map((event) => event!.event_id),
    );
  });

  it("filters by module, event type, status, version and text; drops the oldest past its cap", () => {
    const model = new ViewerModel(3);
    const a = asWire(ragExecution({ codeSignature: "sig-a" }));
    const b = asWire(ragExecution({ codeSignature: "sig-b", error: true }));
    const c = asWire(execution({ module: "Other", inputs: { note: "needle in a haystack" } }));
    model.apply([...a, ...b, ...c]);
    const pick = (filters: Partial<typeof NO_FILTER>) =>
      [...model.executions.values()]
        .filter((run) => matches(run, summarize(run, {}, 0), { ...NO_FILTER, ...filters }))
        .map((run) => run.id);
    const [ia, ib, ic] = [a, b, c].map((events) => events[0]!.execution_id);
    expect(pick({})).toEqual([ia, ib, ic]);
    expect(pick({ module: "LanguageModel" })).toEqual([ia, ib]);
    expect(pick({ eventType: "error" })).toEqual([ib]);
    expect(pick({ status: "error" })).toEqual([ib]);
    expect(pick({ version: "sig-a" })).toEqual([ia]);
    expect(pick({ search: "NEEDLE" })).toEqual([ic]);
    model.apply(asWire(execution()));
    expect(model.executions.has(ia!)).toBe(false);
    expect(model.executions.size).toBe(3);
    model.evict([ib!]);
    expect(model.executions.has(ib!)).toBe(false);
  });

  it("reads usage as total_tokens or prompt/input + completion/output, and prefers a cost the event carries", () => {
    expect(usageTokens({ total_tokens: 7 })).toBe(7);
    expect(usageTokens({ input_tokens: 3, output_tokens: 4 })).toBe(7);
    expect(usageTokens({ model: "x" })).toBeNull();
    expect(
      usageCost(
        { cost_usd: 0.5, model: "m", prompt_tokens: 1 },
        { m: { inputPerMillion: 1, outputPerMillion: 1 } },
      ),
    ).toBe(0.5);
    expect(
      usageCost(
        { model: "m", input_tokens: 1e6, output_tokens: 2e6 },
        { m: { inputPerMillion: 1, outputPerMillion: 2 } },
      ),
    ).toBe(5);
  });

  it.each(["constructor", "toString", "__proto__", "hasOwnProperty"])(
    "has no cost for a model named %s without a price (never Object's members)",
    (name) => {
      const usage = { model: name, input_tokens: 10, output_tokens: 10 };
      expect(usageCost(usage, {})).toBeNull();
      // The table as the page gets it: parsed JSON, where `__proto__` is an own key like any other.
      const prices = JSON.parse(`{"${name}": {"inputPerMillion": 1e6, "outputPerMillion": 0}}`) as PriceTable;
      expect(usageCost(usage, prices)).toBe(10);
    },
  );

  it("says 1 execution, 2 executions, 1,000 events", () => {
    expect(formatCountOf(1, "execution")).toBe("1 execution");
    expect(formatCountOf(0, "execution")).toBe("0 executions");
    expect(formatCountOf(1_000, "event")).toBe("1,000 events");
  });

  it("lists executions newest start first, whatever order they arrived in, newest arrival first on ties", () => {
    const model = new ViewerModel();
    const now = Date.parse("2026-01-01T12:00:00Z");
    const starts = { newest: now, hourOld: now - 3_600_000, middle: now - 60_000, tieFirst: now - 60_000 };
    const idOf = new Map<string, string>();
    // Arrival order: newest, hourOld, tieFirst, middle (tieFirst and middle start at the same time).
    for (const name of ["newest", "hourOld", "tieFirst", "middle"] as const) {
      const events = asWire(execution({ startMs: starts[name] }));
      idOf.set(events[0]!.execution_id, name);
      model.apply(events);
    }
    const inArrivalOrder = Array.from(model.executions.values(), (run) => summarize(run, {}, now));
    const order = newestFirst(inArrivalOrder).map((summary) => idOf.get(summary.id));
    expect(order).toEqual(["newest", "middle", "tieFirst", "hourOld"]);
  });

  it("counts usage once when a parent's end already sums its children's", () => {
    const model = new ViewerModel();
    const events = asWire(
      execution({
        usage: { total_tokens: 30 },
        children: [{ usage: { total_tokens: 10 } }, { usage: { total_tokens: 20 } }],
      }),
    );
    model.apply(events);
    expect(summarize(model.executions.get(events[0]!.execution_id)!, {}, 0).tokens).toBe(30);
  });

  it("takes a stream's token count from its end event, and tells when fewer token events were kept", () => {
    const model = new ViewerModel();
    const events = asWire(execution({ tokens: Array.from({ length: 12 }, (_, i) => `t${i} `) }));
    // The server kept the start, 5 of the 12 token events, and the end (token_count: 12).
    const kept = [events[0]!, ...events.slice(1, 6), events.at(-1)!];
    model.apply(kept);
    const run = model.executions.get(events[0]!.execution_id)!;
    const summary = summarize(run, {}, 0);
    expect(summary).toMatchObject({ tokens: 12, tokensFrom: "stream", tokensKept: 5 });
    expect(formatTokens(summary)).toBe("12 streamed (5 kept)");
    // Every token kept: no note.
    const whole = asWire(execution({ tokens: ["a", "b"] }));
    model.apply(whole);
    const wholeSummary = summarize(model.executions.get(whole[0]!.execution_id)!, {}, 0);
    expect(wholeSummary).toMatchObject({ tokens: 2, tokensFrom: "stream", tokensKept: null });
    expect(formatTokens(wholeSummary)).toBe("2 streamed");
  });
});

describe("a span's bar on the time axis", () => {
  const span = (fields: Partial<Span>): Span =>
    ({ startMs: 1_000, endMs: null, durationMs: null, status: "ok", ...fields }) as Span;

  it("reaches the end timestamp when duration_ms is shorter (a first call's start event took ms to build)", () => {
    // start 1000, end 1004, duration_ms 0.8: a child starting at 1003 lies inside the bar.
    expect(spanExtent(span({ endMs: 1_004, durationMs: 0.8 }), 1_000, 2_000)).toEqual({ from: 0, to: 4 });
  });

  it("uses duration_ms when it reaches further, and runs to now while running", () => {
    expect(spanExtent(span({ endMs: 1_004, durationMs: 4.6 }), 1_000, 2_000)).toEqual({ from: 0, to: 4.6 });
    expect(spanExtent(span({ durationMs: 3 }), 1_000, 2_000)).toEqual({ from: 0, to: 3 });
    expect(spanExtent(span({ status: "running" }), 900, 1_500)).toEqual({ from: 100, to: 600 });
  });
});

describe("the page's formatting", () => {
  it("shows an event stamped before its execution's start with a minus, not '+-'", () => {
    // Formatted as the same distance after the start would be.
    expect(formatOffset(-1)).toBe("-1.0 ms");
    expect(formatOffset(1)).toBe("+1.0 ms");
    expect(formatOffset(-0.25)).toBe("-0.25 ms");
    expect(formatOffset(-1_500)).toBe("-1.50 s");
    expect(formatOffset(0)).toBe("+0.00 ms");
    expect(formatOffset(12)).toBe("+12 ms");
  });

  it("shows long durations in hours and days, never as hundreds of thousands of minutes", () => {
    expect(formatDuration(59_000)).toBe("59.0 s");
    expect(formatDuration(59_960)).toBe("1 min 0 s");
    expect(formatDuration(90_000)).toBe("1 min 30 s");
    expect(formatDuration(3_599_600)).toBe("1 h 0 min");
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe("2 h 5 min");
    // A running execution stamped 340 days ago (the tester saw "490139 min 36 s").
    expect(formatDuration(490_139 * 60_000 + 36_000)).toBe("340 d 9 h");
    expect(formatDuration(4_000 * 86_400_000)).toBe("4,000 d 0 h");
    expect(formatOffset(-2 * 86_400_000)).toBe("-2 d 0 h");
  });

  it("names the source once for stdin, with kind and label for a file or a sink", () => {
    expect(formatSource({ kind: "stdin", label: "stdin", state: "live" })).toBe("stdin");
    expect(formatSource({ kind: "stdin", label: "stdin", state: "ended" })).toBe("stdin (ended)");
    expect(formatSource({ kind: "file", label: "events.jsonl", state: "live", error: "gone" })).toBe(
      "file: events.jsonl — gone",
    );
    expect(formatSource({ kind: "sink", label: "viewer", state: "live" })).toBe("sink: viewer");
  });
});
