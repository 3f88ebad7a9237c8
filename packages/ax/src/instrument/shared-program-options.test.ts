import { ax, flow } from "@ax-llm/ax";
import type { StreamllEvent } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown } from "../test-support/setup";
import { instrumentAx } from "./instrument-ax";
import type { InstrumentAxOptions } from "./options";

afterEach(teardown);

type Summarizer = ReturnType<typeof summarizer>;
const summarizer = () => ax('"Shared summarizer" documentText:string -> summaryText:string');

/** A flow whose only node is `node`, instrumented (nested programs included) with `options`. */
const flowOver = (node: Summarizer, options: InstrumentAxOptions) =>
  instrumentAx(
    flow<{ documentText: string }>()
      .node("sum", node)
      .execute("sum", (state) => ({ documentText: state.documentText }))
      .returns((state) => ({ out: state.sumResult.summaryText })),
    options,
  );

/** The `start` events of the shared program (not of the flows), by the document each summarized. */
const nodeStarts = (events: readonly StreamllEvent[]) => {
  const starts = events.filter((e) => e.event_type === "start");
  const byId = new Map(starts.map((e) => [e.span_id, e]));
  return starts
    .filter((e) => e.module_name === "Shared summarizer")
    .map((e) => ({
      doc: String((e.data.inputs as { documentText?: unknown } | undefined)?.documentText ?? ""),
      inputs: e.data.inputs,
      parent: e.parent_span_id === null ? null : (byId.get(e.parent_span_id)?.module_name ?? "?"),
      tags: e.tags,
    }));
};

describe("instrumentAx(): a program shared by several flows", () => {
  it("tags each call with the flow it runs under, and a standalone call with the global tags only", async () => {
    const sink = setup({ tags: { env: "test" } });
    const { service } = scriptedAI([{ content: "Summary Text: ok" }]);
    const shared = summarizer();
    const flowA = flowOver(shared, { name: "flowA", tags: { flow: "flowA" } });
    const flowB = flowOver(shared, { name: "flowB", tags: { flow: "flowB" } });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      jobs.push(flowA.forward(service, { documentText: `A${i}` }));
      jobs.push(flowB.forward(service, { documentText: `B${i}` }));
      jobs.push(shared.forward(service, { documentText: `S${i}` }));
    }
    await Promise.all(jobs);

    const starts = nodeStarts(await collect(sink));
    expect(starts).toHaveLength(9);
    for (const start of starts) {
      if (start.doc.startsWith("A")) {
        expect(start.parent).toBe("flowA");
        expect(start.tags).toEqual({ env: "test", flow: "flowA" });
      } else if (start.doc.startsWith("B")) {
        expect(start.parent).toBe("flowB");
        expect(start.tags).toEqual({ env: "test", flow: "flowB" });
      } else {
        // Called on its own: no flow, so none of the flows' tags.
        expect(start.parent).toBeNull();
        expect(start.tags).toEqual({ env: "test" });
      }
    }
  });

  it("adds a program's own tags over the flow's, whichever was instrumented first", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Summary Text: ok" }]);
    const shared = instrumentAx(summarizer(), { tags: { role: "summarizer", flow: "own" } });
    const flowA = flowOver(shared, { name: "flowA", tags: { flow: "flowA", team: "docs" } });
    await flowA.forward(service, { documentText: "A0" });
    await shared.forward(service, { documentText: "S0" });

    const starts = nodeStarts(await collect(sink));
    expect(starts.find((s) => s.doc === "A0")?.tags).toEqual({
      flow: "own",
      team: "docs",
      role: "summarizer",
    });
    expect(starts.find((s) => s.doc === "S0")?.tags).toEqual({ flow: "own", role: "summarizer" });
  });

  it("records inputs as the flow a call runs under says, and standalone calls as strictly as any of them", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Summary Text: ok" }]);
    const shared = summarizer();
    const hidden = flowOver(shared, { name: "hidden", includeInputs: false });
    const shown = flowOver(shared, { name: "shown" });
    await hidden.forward(service, { documentText: "private document" });
    await shown.forward(service, { documentText: "public document" });
    await shared.forward(service, { documentText: "standalone document" });

    const events = await collect(sink);
    const text = JSON.stringify(events);
    expect(text).not.toContain("private document");
    expect(text).toContain("public document");
    // A flow that instrumented it hides inputs: called on its own, it hides them too.
    expect(text).not.toContain("standalone document");
    const starts = nodeStarts(events);
    expect(starts.map((s) => [s.parent, s.inputs === undefined])).toEqual([
      ["hidden", true],
      ["shown", false],
      [null, true],
    ]);
  });
});
