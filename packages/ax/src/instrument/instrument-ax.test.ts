import { AxMockAIService, ax, flow } from "@ax-llm/ax";
import { ConfigurationError, getCurrentSpan, type StreamllEvent, trace } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { scriptedAI } from "../test-support/mock-ai";
import { collect, setup, teardown, types } from "../test-support/setup";
import { instrumentAx, isAxInstrumented } from "./instrument-ax";

afterEach(teardown);

const of = (events: readonly StreamllEvent[], type: string) => events.filter((e) => e.event_type === type);
const only = (events: readonly StreamllEvent[], type: string) => {
  const found = of(events, type);
  expect(found, `exactly one ${type} event`).toHaveLength(1);
  return found[0] as StreamllEvent;
};

describe("instrumentAx(ax(...)): forward", () => {
  it("stamps start and end so that their distance is the call's duration", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris" }]);
    const program = instrumentAx(ax('"Answers geography questions" question:string -> answer:string'));
    // The second call is measured: the first one's start event may take milliseconds to build (cold code),
    // and `duration_ms` starts after it.
    await program.forward(service, { question: "Capital of France?" }, { maxRetries: 1 });
    await program.forward(service, { question: "Capital of Spain?" }, { maxRetries: 1 });
    const events = await collect(sink);
    const [start, end] = [of(events, "start")[1], of(events, "end")[1]] as [StreamllEvent, StreamllEvent];
    const apart = Date.parse(end.timestamp) - Date.parse(start.timestamp);
    // Timestamps count whole milliseconds; the duration is kept to the microsecond.
    expect(Math.abs(apart - (end.data.duration_ms as number))).toBeLessThanOrEqual(2);
  });

  it("records one execution per call: input values, the AI as { provider, model }, outputs, usage", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris", usage: { prompt: 12, completion: 3 } }]);
    const program = instrumentAx(ax('"Answers geography questions" question:string -> answer:string'));
    const result = await program.forward(service, { question: "Capital of France?" }, { maxRetries: 1 });
    expect(result).toEqual({ answer: "Paris" });

    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "llm_call", "end"]);
    expect(new Set(events.map((e) => e.execution_id)).size).toBe(1);
    for (const event of events) {
      expect(event.module_name).toBe("Answers geography questions");
      expect(event.method_name).toBe("forward");
      expect(event.parent_span_id).toBeNull();
    }
    const start = only(events, "start");
    expect(start.data).toEqual({
      ai: { provider: "mock-ai", model: "mock-model" },
      inputs: { question: "Capital of France?" },
    });
    const llm = only(events, "llm_call");
    expect(llm.data).toMatchObject({
      provider: "mock-ai",
      model: "mock-model",
      streaming: false,
      usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    });
    expect(typeof llm.data.latency_ms).toBe("number");
    const end = only(events, "end");
    expect(end.data.outputs).toEqual({ answer: "Paris" });
    expect(end.data.usage).toEqual({
      prompt_tokens: 12,
      completion_tokens: 3,
      total_tokens: 15,
      model: "mock-model",
      provider: "mock-ai",
      requests: 1,
    });
    expect(end.data.llm_calls).toBe(1);
    expect(typeof end.data.duration_ms).toBe("number");
  });

  it("names the module by description, the signature's fields, or the given name — never Ax's class name", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: 4" }]);
    await instrumentAx(ax("question:string -> answer:string")).forward(service, { question: "2+2?" });
    await instrumentAx(ax('"Adds numbers" question:string -> answer:string')).forward(service, {
      question: "q",
    });
    await instrumentAx(ax("question:string -> answer:string"), { name: "calculator" }).forward(service, {
      question: "q",
    });
    const names = of(await collect(sink), "start").map((e) => e.module_name);
    expect(names).toEqual(["question -> answer", "Adds numbers", "calculator"]);
  });

  it("sums usage over retries and records each retry with Ax's reason", async () => {
    const sink = setup();
    const { service } = scriptedAI([
      { content: "Answer: unknown", usage: { prompt: 10, completion: 2 } },
      { content: "Answer: Paris", usage: { prompt: 30, completion: 3 } },
    ]);
    const program = ax("question:string -> answer:string");
    program.addAssert((out) => (out.answer === "unknown" ? "the answer must be a city" : true));
    instrumentAx(program);
    expect(await program.forward(service, { question: "Capital?" })).toEqual({ answer: "Paris" });

    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "llm_call", "retry", "llm_call", "end"]);
    expect(only(events, "retry").data).toEqual({
      attempt: 1,
      kind: "validation",
      reason: "the answer must be a city",
    });
    const end = only(events, "end");
    expect(end.data.retries).toBe(1);
    expect(end.data.usage).toMatchObject({
      prompt_tokens: 40,
      completion_tokens: 5,
      total_tokens: 45,
      requests: 2,
    });
  });

  it("records an error with its reason and the usage spent, and rethrows Ax's error unchanged", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: unknown" }]);
    const program = ax("question:string -> answer:string");
    program.addAssert(() => "never good enough");
    instrumentAx(program);
    const thrown = await program
      .forward(service, { question: "q" }, { maxRetries: 2 })
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);

    const events = await collect(sink);
    const error = only(events, "error");
    expect(error.data.error_message).toBe((thrown as Error).message);
    expect(error.data.error_type).toBe((thrown as Error).name);
    expect(error.data.usage).toMatchObject({ requests: of(events, "llm_call").length });
    expect(of(events, "retry").length).toBeGreaterThan(0);
    for (const retry of of(events, "retry")) expect(retry.data.reason).toBe("never good enough");
    expect(of(events, "end")).toHaveLength(0);
  });

  it("records a failing AI service as a failed llm_call and an error", async () => {
    const sink = setup();
    const service = new AxMockAIService<string>({ shouldError: true, errorMessage: "provider is down" });
    const program = instrumentAx(ax("question:string -> answer:string"));
    await expect(program.forward(service, { question: "q" }, { maxRetries: 0 })).rejects.toThrow();
    const events = await collect(sink);
    const calls = of(events, "llm_call");
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]?.data.error_message).toContain("provider is down");
    expect(only(events, "error").data.error_message).toMatch(/provider is down/);
  });

  it("marks an aborted call as cancelled", async () => {
    const sink = setup();
    const service = new AxMockAIService<string>({
      latencyMs: 200,
      chatResponse: { results: [{ index: 0, content: "Answer: late", finishReason: "stop" }] },
    });
    const program = instrumentAx(ax("question:string -> answer:string"));
    const controller = new AbortController();
    const pending = program.forward(service, { question: "q" }, { abortSignal: controller.signal });
    setTimeout(() => controller.abort("user left"), 20);
    await expect(pending).rejects.toThrow();
    const error = only(await collect(sink), "error");
    expect(error.data.cancelled).toBe(true);
  });

  it("runs the program unchanged when streamll has no sink", async () => {
    const { service } = scriptedAI([{ content: "Answer: Paris" }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    expect(await program.forward(service, { question: "q" })).toEqual({ answer: "Paris" });
  });

  it("keeps concurrent calls apart: one execution each, usage not mixed", async () => {
    const sink = setup();
    const a = scriptedAI([{ content: "Answer: A", usage: { prompt: 1, completion: 1 } }]);
    const b = scriptedAI([{ content: "Answer: B", usage: { prompt: 100, completion: 100 } }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    await Promise.all([
      program.forward(a.service, { question: "a" }),
      program.forward(b.service, { question: "b" }),
    ]);
    const ends = of(await collect(sink), "end");
    expect(
      ends.map((e) => (e.data.usage as { total_tokens: number }).total_tokens).sort((x, y) => x - y),
    ).toEqual([2, 200]);
    expect(new Set(ends.map((e) => e.execution_id)).size).toBe(2);
  });

  it("passes the caller's own logger and onFunctionCall through", async () => {
    setup();
    const { service } = scriptedAI([{ content: "Answer: unknown" }, { content: "Answer: ok" }]);
    const program = ax("question:string -> answer:string");
    program.addAssert((out) => (out.answer === "unknown" ? "try again" : true));
    instrumentAx(program);
    const seen: string[] = [];
    await program.forward(service, { question: "q" }, { debug: true, logger: (m) => seen.push(m.name) });
    expect(seen).toContain("ValidationError");
    const quiet: string[] = [];
    await program.forward(service, { question: "q" }, { logger: (m) => quiet.push(m.name) });
    expect(quiet, "debug was off: Ax would not have logged").toEqual([]);
  });
});

describe("instrumentAx(ax(...)): streaming", () => {
  it("emits token events per output field for streamingForward, resetting on a retry", async () => {
    const sink = setup();
    const { service } = scriptedAI([
      { content: "Answer: unknown", chunkSize: 100 },
      { content: "Answer: Paris is the capital", chunkSize: 6 },
    ]);
    const program = ax("question:string -> answer:string");
    program.addAssert((out) => (out.answer === "unknown" ? "the answer must be a city" : true));
    instrumentAx(program);
    const chunks: unknown[] = [];
    for await (const chunk of program.streamingForward(service, { question: "q" })) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);

    const events = await collect(sink);
    const retry = only(events, "retry");
    expect(retry.data).toMatchObject({
      previous_version: 0,
      version: 1,
      kind: "validation",
      reason: "the answer must be a city",
    });
    const after = events.slice(events.indexOf(retry));
    const tokens = of(after, "token");
    expect(tokens.map((t) => t.data.field)).toEqual(tokens.map(() => "answer"));
    expect(tokens.map((t) => t.data.token).join("")).toBe("Paris is the capital");
    expect(tokens.map((t) => t.data.token_index)).toEqual(tokens.map((_, i) => i));
    const end = only(events, "end");
    expect(end.data).toMatchObject({
      cancelled: false,
      token_count: tokens.length,
      outputs: { answer: "Paris is the capital" },
    });
    expect(end.data.usage).toMatchObject({ requests: 2 });
    expect(only(events, "start").data.streaming).toBe(true);
  });

  it("records a retry whose failed attempt streamed nothing, with Ax's reason, streamed either way", async () => {
    for (const mode of ["streamingForward", "forward+stream"] as const) {
      const sink = setup();
      const { service } = scriptedAI([
        { content: "Answer: bad" },
        { content: "Answer: bad again", chunkSize: 100 },
        { content: "Answer: good" },
      ]);
      const program = ax("question:string -> answer:string");
      // Fails on the first chunk of the answer: the failed attempts never reach the output stream.
      program.addStreamingAssert("answer", (value) => (value?.includes("bad") ? "no bad answers" : true));
      instrumentAx(program);
      if (mode === "streamingForward") {
        for await (const _ of program.streamingForward(service, { question: "q" }));
      } else {
        expect(await program.forward(service, { question: "q" }, { stream: true })).toEqual({
          answer: "good",
        });
      }

      const events = await collect(sink);
      expect(of(events, "llm_call"), mode).toHaveLength(3);
      expect(of(events, "retry").map((e) => e.data)).toEqual([
        { attempt: 1, version: 2, discarded_tokens: 0, kind: "validation", reason: "no bad answers" },
        { attempt: 2, version: 2, discarded_tokens: 0, kind: "validation", reason: "no bad answers" },
      ]);
      expect(only(events, "end").data).toMatchObject({ retries: 2, outputs: { answer: "good" } });
      teardown();
    }
  });

  it("records the retries of a streamed call that failed before streaming anything", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: bad" }]);
    const program = ax("question:string -> answer:string");
    program.addStreamingAssert("answer", (value) => (value?.includes("bad") ? "no bad answers" : true));
    instrumentAx(program);
    const run = async () => {
      for await (const _ of program.streamingForward(service, { question: "q" }, { maxRetries: 2 }));
    };
    await expect(run()).rejects.toThrow("no bad answers");

    const events = await collect(sink);
    const retries = of(events, "retry");
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.map((e) => e.data.attempt)).toEqual(retries.map((_, i) => i + 1));
    for (const retry of retries)
      expect(retry.data).toMatchObject({ kind: "validation", reason: "no bad answers" });
    expect(only(events, "error").data.retries).toBe(retries.length);
  });

  it("emits token events for forward(..., { stream: true }) and returns the same result", async () => {
    const sink = setup();
    const { service, requests } = scriptedAI([{ content: "Answer: Paris is the capital", chunkSize: 5 }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    expect(await program.forward(service, { question: "q" }, { stream: true })).toEqual({
      answer: "Paris is the capital",
    });
    expect(requests[0]?.stream).toBe(true);
    const events = await collect(sink);
    const tokens = of(events, "token");
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.map((t) => t.data.token).join("")).toBe("Paris is the capital");
    expect(only(events, "end").data).toMatchObject({
      token_count: tokens.length,
      outputs: { answer: "Paris is the capital" },
    });
  });

  it("ends streamingForward with every parsed output, as forward(..., { stream: true }) records them", async () => {
    const sink = setup();
    const signature =
      'question:string -> answer:string, score:number, tags:string[], ok:boolean, info:json, kind:class "a, b"';
    const content = 'Answer: hello world\nScore: 7\nTags: ["x", "y"]\nOk: true\nInfo: {"a": 1}\nKind: b';
    const program = instrumentAx(ax(signature as "question:string -> answer:string"));
    const streamed: Record<string, unknown> = {};
    for await (const chunk of program.streamingForward(scriptedAI([{ content, chunkSize: 4 }]).service, {
      question: "q",
    }))
      Object.assign(streamed, chunk.delta);
    const result = await program.forward(
      scriptedAI([{ content, chunkSize: 4 }]).service,
      { question: "q" },
      { stream: true },
    );

    const expected = {
      answer: "hello world",
      score: 7,
      tags: ["x", "y"],
      ok: true,
      info: { a: 1 },
      kind: "b",
    };
    expect(result).toEqual(expected);
    const ends = of(await collect(sink), "end");
    expect(ends.map((e) => e.data.outputs)).toEqual([expected, expected]);
    const [streamEnd, forwardEnd] = ends as [StreamllEvent, StreamllEvent];
    const tokensOf = (end: StreamllEvent) =>
      of(sink.events, "token").filter((t) => t.span_id === end.span_id);
    // A value that is not text is one token, as JSON, on both paths.
    for (const end of [streamEnd, forwardEnd]) {
      const tokens = tokensOf(end);
      expect(tokens.filter((t) => t.data.field === "score").map((t) => t.data.token)).toEqual(["7"]);
      expect(tokens.filter((t) => t.data.field === "info").map((t) => t.data.token)).toEqual(['{"a":1}']);
      expect(end.data.token_count).toBe(tokens.length);
    }
  });

  it("ends a streamingForward of a single number field with that number", async () => {
    const sink = setup();
    const program = instrumentAx(ax("question:string -> answer:number"));
    for await (const _ of program.streamingForward(scriptedAI([{ content: "Answer: 42" }]).service, {
      question: "q",
    }));
    expect(only(await collect(sink), "end").data.outputs).toEqual({ answer: 42 });
  });

  it("emits no token events for a forward without stream", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris" }]);
    await instrumentAx(ax("question:string -> answer:string")).forward(service, { question: "q" });
    expect(of(await collect(sink), "token")).toHaveLength(0);
  });

  it("ends a stream the consumer stops early as cancelled", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: a long streamed answer", chunkSize: 3 }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    for await (const _ of program.streamingForward(service, { question: "q" })) break;
    const end = only(await collect(sink), "end");
    expect(end.data.cancelled).toBe(true);
  });

  it("records the model request of a stream the consumer stops early, with the usage reported so far", async () => {
    const sink = setup();
    const pieces = ["Answer: ", "a long ", "long ", "answer"];
    let requests = 0;
    // A provider that reports usage with every chunk and streams lazily: Ax leaves the rest unread.
    const service = new AxMockAIService<string>({
      name: "mock-ai",
      features: { streaming: true },
      chatResponse: async () => {
        requests += 1;
        let i = 0;
        return new ReadableStream({
          async pull(controller) {
            await new Promise((resolve) => setTimeout(resolve, 5));
            if (i >= pieces.length) return controller.close();
            controller.enqueue({
              results: [
                { index: 0, content: pieces[i] as string, ...(i === 3 ? { finishReason: "stop" } : {}) },
              ],
              modelUsage: {
                ai: "mock-ai",
                model: "mock-model",
                tokens: { promptTokens: 1000, completionTokens: i + 1, totalTokens: 1001 + i },
              },
            });
            i += 1;
          },
        });
      },
    });
    const program = instrumentAx(ax("question:string -> answer:string"));
    for await (const _ of program.streamingForward(service, { question: "q" })) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const events = await collect(sink);
    expect(requests).toBe(1);
    const call = only(events, "llm_call");
    expect(call.data).toMatchObject({ streaming: true, cancelled: true, model: "mock-model" });
    expect((call.data.usage as { prompt_tokens: number }).prompt_tokens).toBe(1000);
    const end = only(events, "end");
    expect(events.indexOf(call)).toBeLessThan(events.indexOf(end));
    expect(end.data).toMatchObject({ cancelled: true, llm_calls: 1 });
    expect(end.data.usage).toMatchObject({ prompt_tokens: 1000, requests: 1 });
  });

  it("runs the consumer's loop body outside the call's span (its own work is not the program's)", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris", chunkSize: 2 }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    const seen: (string | undefined)[] = [];
    for await (const _ of program.streamingForward(service, { question: "q" }))
      seen.push(getCurrentSpan()?.spanId);
    const start = only(await collect(sink), "start");
    expect(seen.every((id) => id === undefined)).toBe(true);
    expect(start.span_id).toBeTruthy();
  });
});

describe("instrumentAx(ax(...)): output fields with redacted names", () => {
  const SECRET = "PLANTEDVALUE9876543210";
  const tokensOf = (events: readonly StreamllEvent[], field: string) =>
    of(events, "token").filter((t) => t.data.field === field);

  it("streams a redacted field's tokens as one [REDACTED] then empty tokens, joined as end shows it", async () => {
    for (const mode of ["streamingForward", "forward+stream"] as const) {
      const sink = setup();
      const { service } = scriptedAI([{ content: `Api Password: ${SECRET} ok\nAnswer: fine`, chunkSize: 4 }]);
      const program = instrumentAx(ax("question:string -> apiPassword:string, answer:string"));
      if (mode === "streamingForward")
        for await (const _ of program.streamingForward(service, { question: "q" }));
      else await program.forward(service, { question: "q" }, { stream: true });

      const events = await collect(sink);
      expect(JSON.stringify(events), mode).not.toContain("PLANTED");
      const secret = tokensOf(events, "apiPassword");
      expect(secret.length, mode).toBeGreaterThan(1);
      expect(secret.map((t) => t.data.token)).toEqual(secret.map((_, i) => (i === 0 ? "[REDACTED]" : "")));
      expect(
        tokensOf(events, "answer")
          .map((t) => t.data.token)
          .join(""),
      ).toBe("fine");
      const tokens = of(events, "token");
      expect(tokens.map((t) => t.data.token_index).sort((a, b) => Number(a) - Number(b))).toEqual(
        tokens.map((_, i) => i),
      );
      const end = only(events, "end");
      expect(end.data.outputs).toEqual({ apiPassword: "[REDACTED]", answer: "fine" });
      expect(end.data.token_count).toBe(tokens.length);
      await teardown();
    }
  });

  it("hides a redacted field's value in the keys of a JSON field's tokens too", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Info: {"password": "${SECRET}", "a": 1}` }]);
    const program = instrumentAx(ax("question:string -> info:json"));
    for await (const _ of program.streamingForward(service, { question: "q" }));
    const events = await collect(sink);
    expect(tokensOf(events, "info").map((t) => t.data.token)).toEqual(['{"password":"[REDACTED]","a":1}']);
    expect(JSON.stringify(events)).not.toContain("PLANTED");
  });

  it("hides the field's value in retry reasons and the error of an unstreamed call", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Api Password: ${SECRET}` }]);
    const program = instrumentAx(ax("question:string -> apiPassword:number"));
    await expect(program.forward(service, { question: "q" }, { maxRetries: 1 })).rejects.toThrow(SECRET);

    const events = await collect(sink);
    const retries = of(events, "retry");
    expect(retries.length).toBeGreaterThan(0);
    for (const retry of retries) expect(retry.data.reason).toContain("invalid value '[REDACTED]'");
    expect(only(events, "error").data.error_message).toContain("invalid value '[REDACTED]'");
    expect(JSON.stringify(events)).not.toContain("PLANTED");
  });

  it("hides the field's value quoted in the model output of another field's error, streamed", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: `Api Password: ${SECRET}\nScore: x`, chunkSize: 4 }]);
    const program = instrumentAx(ax("question:string -> apiPassword:string, score:number"));
    const run = async () => {
      for await (const _ of program.streamingForward(service, { question: "q" }, { maxRetries: 1 }));
    };
    await expect(run()).rejects.toThrow(SECRET);

    const events = await collect(sink);
    expect(of(events, "retry").length).toBeGreaterThan(0);
    // Hidden either as the field's value or, first, as a `password:` pair by the error-text scrub.
    expect(only(events, "error").data.error_message).toMatch(/Api Password: \[(?:REDACTED|redacted)\]/);
    expect(JSON.stringify(events)).not.toContain("PLANTED");
  });

  it("leaves tokens and errors to a redact function, and redacts nothing with redact: []", async () => {
    for (const redact of [[], (event: StreamllEvent) => event]) {
      const sink = setup({ redact });
      const { service } = scriptedAI([{ content: `Api Password: ${SECRET}`, chunkSize: 4 }]);
      const program = instrumentAx(ax("question:string -> apiPassword:string"));
      for await (const _ of program.streamingForward(service, { question: "q" }));
      const events = await collect(sink);
      expect(
        tokensOf(events, "apiPassword")
          .map((t) => t.data.token)
          .join(""),
      ).toBe(SECRET);
      expect(only(events, "end").data.outputs).toEqual({ apiPassword: SECRET });
      await teardown();
    }
  });
});

/** A two-node flow (summarizer, then critic) instrumented as "review", on a service scripted for it. */
function reviewFlow() {
  const { service } = scriptedAI([
    { content: "Summary Text: short", usage: { prompt: 7, completion: 2 } },
    { content: "Verdict: fine", usage: { prompt: 5, completion: 1 } },
  ]);
  const review = flow<{ documentText: string }>()
    .node("summarizer", "documentText:string -> summaryText:string")
    .node("critic", "summaryText:string -> verdict:string")
    .execute("summarizer", (s) => ({ documentText: s.documentText }))
    .execute("critic", (s) => ({ summaryText: s.summarizerResult.summaryText }))
    .returns((s) => ({ verdict: s.criticResult.verdict }));
  instrumentAx(review, { name: "review" });
  return { service, review };
}

describe("instrumentAx(...): nesting", () => {
  it("makes each node of a flow a child span, with the flow's usage summed over its nodes", async () => {
    const sink = setup();
    const { service, review } = reviewFlow();
    expect(await review.forward(service, { documentText: "a long text" })).toEqual({ verdict: "fine" });

    const events = await collect(sink);
    expect(new Set(events.map((e) => e.execution_id)).size).toBe(1);
    const root = events.find((e) => e.module_name === "review" && e.event_type === "start") as StreamllEvent;
    expect(root.parent_span_id).toBeNull();
    const starts = of(events, "start").filter((e) => e !== root);
    expect(starts.map((e) => e.module_name)).toEqual(["summarizer", "critic"]);
    for (const start of starts) expect(start.parent_span_id).toBe(root.span_id);
    const end = events.find((e) => e.module_name === "review" && e.event_type === "end") as StreamllEvent;
    expect(end.data.outputs).toEqual({ verdict: "fine" });
    expect(end.data.usage).toMatchObject({
      prompt_tokens: 12,
      completion_tokens: 3,
      total_tokens: 15,
      requests: 2,
    });
    expect(end.data.llm_calls).toBe(0);
    const nodeCalls = of(events, "llm_call");
    expect(nodeCalls.map((e) => e.module_name)).toEqual(["summarizer", "critic"]);
  });

  it("records a flow's streamingForward as one span, its nodes' usage counted once", async () => {
    const sink = setup();
    const { service, review } = reviewFlow();
    const chunks: unknown[] = [];
    for await (const chunk of review.streamingForward(service, { documentText: "a long text" }))
      chunks.push(chunk);
    expect(chunks).toEqual([{ version: 1, index: 0, delta: { verdict: "fine" } }]);

    const events = await collect(sink);
    const starts = of(events, "start");
    expect(starts.map((e) => e.module_name)).toEqual(["review", "summarizer", "critic"]);
    const root = starts[0] as StreamllEvent;
    expect(root.parent_span_id).toBeNull();
    expect(root.data.streaming).toBe(true);
    for (const start of starts.slice(1)) expect(start.parent_span_id).toBe(root.span_id);
    const ends = of(events, "end");
    expect(ends.map((e) => e.module_name)).toEqual(["summarizer", "critic", "review"]);
    const total = ends.filter((e) => e.module_name === "review").map((e) => e.data.usage);
    expect(total).toEqual([expect.objectContaining({ total_tokens: 15, requests: 2 })]);
    expect(ends[2]?.data.outputs).toEqual({ verdict: "fine" });
  });

  it("nests a program called inside a trace() block or another program's span", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris" }]);
    const program = instrumentAx(ax("question:string -> answer:string"));
    await trace("pipeline", () => program.forward(service, { question: "q" }));
    const events = await collect(sink);
    const pipeline = events.find(
      (e) => e.operation === "pipeline" && e.event_type === "start",
    ) as StreamllEvent;
    const start = events.find((e) => e.module_name === "question -> answer" && e.event_type === "start");
    expect(start?.parent_span_id).toBe(pipeline.span_id);
    expect(start?.execution_id).toBe(pipeline.execution_id);
  });
});

describe("instrumentAx(): options", () => {
  it("returns the same program, instrumented once", () => {
    const program = ax("question:string -> answer:string");
    expect(instrumentAx(program)).toBe(program);
    expect(instrumentAx(program)).toBe(program);
    expect(isAxInstrumented(program)).toBe(true);
    expect(isAxInstrumented(ax("question:string -> answer:string"))).toBe(false);
  });

  it("rejects unknown options with the nearest name, and values that are not programs", () => {
    const program = ax("question:string -> answer:string");
    expect(() => instrumentAx(program, { nam: "x" } as never)).toThrow(ConfigurationError);
    expect(() => instrumentAx(program, { nam: "x" } as never)).toThrow(/name/);
    expect(() => instrumentAx(program, { tags: { a: 1 } } as never)).toThrow(/tags\.a/);
    expect(() => instrumentAx({} as never)).toThrow(/Ax program/);
  });

  it("leaves inputs and outputs out when asked, and adds tags", async () => {
    const sink = setup();
    const { service } = scriptedAI([{ content: "Answer: Paris", chunkSize: 3 }]);
    const program = instrumentAx(ax("question:string -> answer:string"), {
      includeInputs: false,
      includeOutputs: false,
      tags: { team: "geo" },
    });
    await program.forward(service, { question: "secret question" }, { stream: true });
    const events = await collect(sink);
    expect(JSON.stringify(events)).not.toContain("secret question");
    expect(JSON.stringify(events)).not.toContain("Paris");
    expect(of(events, "token")).toHaveLength(0);
    expect(only(events, "end").data.token_count).toBeGreaterThan(0);
    for (const event of events) expect(event.tags).toMatchObject({ team: "geo" });
  });
});
