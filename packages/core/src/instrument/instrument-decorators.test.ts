import * as ts from "typescript";
import { afterEach, describe, expect, it } from "vitest";
import { MemorySink } from "../sinks/memory-sink";
import { instrument } from "./instrument";
import { configure, flush, shutdown } from "./runtime";

/**
 * The decorator tests in instrument.test.ts call the decorator by hand with hand-made contexts. These compile
 * real decorator syntax with the TypeScript compiler in both calling conventions and run the output, so the
 * arguments the decorator sees are exactly the ones TypeScript's emitted helpers pass (`__esDecorate` for
 * standard decorators, `__decorate` for `experimentalDecorators`).
 */
const SOURCE = `
function define(instrument: any) {
  @instrument({ name: "qa" })
  class QuestionAnswering {
    prefix = "answer to ";
    async forward(question: string): Promise<string> {
      return this.prefix + question;
    }
  }

  class Retriever {
    @instrument({ operation: "search" })
    search(query: string): string[] {
      return [query, query.toUpperCase()];
    }

    @instrument()
    static create(): Retriever {
      return new Retriever();
    }

    plain(): string {
      return "not instrumented";
    }
  }

  @instrument()
  class Streamer {
    async *streamingForward(topic: string): AsyncGenerator<string> {
      yield "about ";
      yield topic;
    }
  }

  return { QuestionAnswering, Retriever, Streamer };
}
`;

interface Defined {
  QuestionAnswering: new () => { forward(question: string): Promise<string> };
  Retriever: {
    new (): { search(query: string): string[]; plain(): string };
    create(): { search(query: string): string[] };
  };
  Streamer: new () => { streamingForward(topic: string): AsyncGenerator<string> };
}

function compile(experimentalDecorators: boolean): (decorate: typeof instrument) => Defined {
  const output = ts.transpileModule(SOURCE, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      experimentalDecorators,
      useDefineForClassFields: true,
    },
    reportDiagnostics: true,
  });
  expect(output.diagnostics ?? []).toEqual([]);
  // The helper the convention emits proves which one is under test.
  expect(output.outputText).toContain(experimentalDecorators ? "__decorate" : "__esDecorate");
  return new Function(`${output.outputText}\nreturn define;`)() as (decorate: typeof instrument) => Defined;
}

afterEach(async () => {
  await shutdown(2_000);
});

describe.each([
  { convention: "standard (TC39)", experimentalDecorators: false },
  { convention: "legacy (experimentalDecorators)", experimentalDecorators: true },
])("@instrument() compiled by TypeScript, $convention", ({ experimentalDecorators }) => {
  it("instruments decorated classes and methods, static ones too, and nothing else", async () => {
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }] });
    const { QuestionAnswering, Retriever, Streamer } = compile(experimentalDecorators)(instrument);

    expect(await new QuestionAnswering().forward("why?")).toBe("answer to why?");
    const retriever = Retriever.create();
    expect(retriever.search("q")).toEqual(["q", "Q"]);
    expect(new Retriever().plain()).toBe("not instrumented");
    let streamed = "";
    for await (const token of new Streamer().streamingForward("tokens")) streamed += token;
    expect(streamed).toBe("about tokens");

    expect(await flush(2_000)).toBe(true);
    const lines = sink.events.map(
      (e) => `${e.module_name}.${e.method_name}:${e.operation ?? "-"}:${e.event_type}`,
    );
    expect(lines).toEqual([
      "qa.forward:-:start",
      "qa.forward:-:end",
      "Retriever.create:-:start",
      "Retriever.create:-:end",
      "Retriever.search:search:start",
      "Retriever.search:search:end",
      "Streamer.streamingForward:-:start",
      "Streamer.streamingForward:-:token",
      "Streamer.streamingForward:-:token",
      "Streamer.streamingForward:-:end",
    ]);
    const events = sink.events;
    expect(events[1]?.data.outputs).toBe("answer to why?");
    expect(events[4]?.data.inputs).toBe("q");
    expect(events.at(-1)?.data.outputs).toEqual({ output: "about tokens" });
  });
});
