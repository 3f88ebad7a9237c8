import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ai, ax, flow } from "@ax-llm/ax";
import { configure, DIAGNOSTICS_CHANNEL, flush, JsonlFileSink, MemorySink, shutdown } from "@streamll/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { fakeOpenAIFetch } from "../test-support/fake-openai-fetch";
import { scriptedAI } from "../test-support/mock-ai";

/** A key that must never be seen anywhere streamll writes. */
const SECRET = "sk-PLANTED-7f3c9a1e5b2d4f6a8c0e";

let dir: string;
let printed: string[];
let restore: (() => void)[];

function capture(stream: NodeJS.WriteStream): void {
  const original = stream.write.bind(stream);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    printed.push(String(chunk));
    return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  restore.push(() => {
    stream.write = original as typeof stream.write;
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "streamll-ax-secret-"));
  printed = [];
  restore = [];
  capture(process.stdout);
  capture(process.stderr);
  const diagnostics = (message: unknown) => printed.push(JSON.stringify(message));
  subscribe(DIAGNOSTICS_CHANNEL, diagnostics);
  restore.push(() => unsubscribe(DIAGNOSTICS_CHANNEL, diagnostics));
});

afterEach(async () => {
  await shutdown(2_000);
  for (const undo of restore.reverse()) undo();
  rmSync(dir, { recursive: true, force: true });
});

describe("a provider created with an API key", () => {
  it("never puts the key in an event, a log line, a stored file or an error", async () => {
    const memory = new MemorySink();
    const path = join(dir, "events.jsonl");
    const logged: string[] = [];
    configure({
      sinks: [{ sink: memory, delivery: { flushIntervalMs: 1 } }, { sink: new JsonlFileSink({ path }) }],
      versionTracking: true,
      logger: {
        warn: (m, c) => logged.push(m, JSON.stringify(c ?? {})),
        error: (m, c) => logged.push(m, JSON.stringify(c ?? {})),
      },
    });
    const good = fakeOpenAIFetch({ answer: "Answer: Paris" });
    const openai = ai({ name: "openai", apiKey: SECRET, options: { fetch: good.fetch as typeof fetch } });
    const program = instrumentAx(ax("question:string -> answer:string"));

    expect(await program.forward(openai, { question: "Capital of France?" })).toEqual({ answer: "Paris" });
    expect(await program.forward(openai, { question: "Again?" }, { stream: true })).toEqual({
      answer: "Paris",
    });
    for await (const _ of program.streamingForward(openai, { question: "Streamed?" })) void _;
    const review = flow<{ question: string }>()
      .node("answerer", "question:string -> answer:string")
      .execute("answerer", (s) => ({ question: s.question }))
      .returns((s) => ({ answer: s.answererResult.answer }));
    instrumentAx(review, { name: "review" });
    await review.forward(openai, { question: "In a flow?" });
    // The key really was in use: the provider sent it with every request.
    expect(good.authorizations.length).toBeGreaterThanOrEqual(4);
    expect(good.authorizations.every((header) => header === `Bearer ${SECRET}`)).toBe(true);

    const rejected = fakeOpenAIFetch({ answer: "", status: 401 });
    const badKey = ai({ name: "openai", apiKey: SECRET, options: { fetch: rejected.fetch as typeof fetch } });
    const thrown = await program
      .forward(badKey, { question: "q" }, { maxRetries: 0 })
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);
    // The key also travels as a forward() argument of its own: still never recorded.
    await program
      .forward(openai, { question: "q" }, { ai: openai, apiKey: SECRET } as never)
      .catch(() => undefined);

    await flush(2_000);
    await shutdown(2_000);
    const events = memory.events;
    expect(events.length).toBeGreaterThan(10);
    const starts = events.filter((e) => e.event_type === "start" && e.parent_span_id === null);
    for (const start of starts)
      expect(Object.keys(start.data.ai as object).sort()).toEqual(["model", "provider"]);

    const everything = [
      JSON.stringify(events),
      readFileSync(path, "utf8"),
      logged.join("\n"),
      printed.join(""),
      String(thrown),
      (thrown as Error).stack ?? "",
      JSON.stringify(thrown),
    ];
    for (const text of everything) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain("PLANTED");
    }
    expect(readFileSync(path, "utf8")).toContain('"event_type":"llm_call"');
  });
});

describe("an input under a secret key name", () => {
  /** Not credential-shaped (no `sk-` prefix): only its key name marks it as secret. */
  const PASSWORD = "hunter2-PLANTED-pw-4242";

  it("is hidden in the error event when the provider's error quotes the prompt", async () => {
    const memory = new MemorySink();
    configure({ sinks: [{ sink: memory, delivery: { flushIntervalMs: 1 } }] });
    const failing = fakeOpenAIFetch({ answer: "", status: 500 });
    const openai = ai({
      name: "openai",
      apiKey: "k",
      // No HTTP retries with their backoff: the first 500 is the error.
      options: { fetch: failing.fetch as typeof fetch, retry: { maxRetries: 0 } },
    });
    const program = instrumentAx(ax("question:string, userPassword:string, apiKey:string -> answer:string"));
    const values = { question: "log me in", userPassword: PASSWORD, apiKey: `${PASSWORD}-key` };
    const thrown = await program.forward(openai, values, { maxRetries: 0 }).catch((e: unknown) => e);
    // The host's error is its own, unchanged: it still quotes the prompt.
    expect((thrown as Error).stack).toContain(PASSWORD);

    await flush(2_000);
    const events = memory.events;
    const error = events.find((e) => e.event_type === "error");
    expect(error?.data.error_type).toBe((thrown as Error).name);
    expect(String(error?.data.stack)).toContain("[REDACTED]");
    expect(events.find((e) => e.event_type === "start")?.data.inputs).toMatchObject({
      userPassword: "[REDACTED]",
      apiKey: "[REDACTED]",
    });
    expect(JSON.stringify(events)).not.toContain("PLANTED");
  });

  it("is hidden in retry reasons that quote it", async () => {
    const memory = new MemorySink();
    configure({ sinks: [{ sink: memory, delivery: { flushIntervalMs: 1 } }] });
    // The model echoes the password where a class is expected: Ax's validation error quotes the value.
    const { service } = scriptedAI([{ content: `Answer: ${PASSWORD}` }, { content: "Answer: yes" }]);
    const program = instrumentAx(ax('question:string, userPassword:string -> answer:class "yes, no"'));
    const values = { question: "log me in", userPassword: PASSWORD };
    expect(await program.forward(service, values)).toEqual({ answer: "yes" });

    await flush(2_000);
    const retries = memory.events.filter((e) => e.event_type === "retry");
    expect(retries.map((e) => e.data.kind)).toEqual(["validation"]);
    for (const retry of retries) expect(retry.data.reason).toContain("[REDACTED]");
    expect(JSON.stringify(memory.events)).not.toContain("PLANTED");
  });

  it("is hidden in the errors of the functions the program calls", async () => {
    const memory = new MemorySink();
    configure({ sinks: [{ sink: memory, delivery: { flushIntervalMs: 1 } }] });
    const { service } = scriptedAI([
      { content: "", functionCalls: [{ id: "c1", name: "login", params: "{}" }] },
      { content: "Answer: done" },
    ]);
    const login = {
      name: "login",
      description: "Logs the user in",
      parameters: { type: "object" as const, properties: {} },
      func: async () => {
        throw new Error(`login refused for password ${PASSWORD}`);
      },
    };
    const program = instrumentAx(
      ax("question:string, userPassword:string -> answer:string", { functions: [login] }),
    );
    const thrown = await program
      .forward(service, { question: "log me in", userPassword: PASSWORD })
      .catch((e: unknown) => e);
    expect(String(thrown)).toContain(PASSWORD);

    await flush(2_000);
    const errors = memory.events.filter((e) => e.event_type === "error");
    expect(errors.length).toBeGreaterThan(0);
    expect(JSON.stringify(errors)).toContain("[REDACTED]");
    // The function's span carries the function's own error, the password hidden in its message and stack.
    const functionError = errors.find((e) => e.operation === "function:login");
    expect(functionError?.data.error_message).toBe("login refused for password [REDACTED]");
    expect(functionError?.data.stack).toContain("login refused for password [REDACTED]");
    expect(JSON.stringify(memory.events)).not.toContain("PLANTED");
  });
});

describe("a credential the model streams", () => {
  /** Streamed 3 characters at a time: no token event holds enough of a key to look like one. */
  const ANSWER = "use sk-proj-PLANTEDstream0123456789 with Bearer PLANTEDbearer0123456789xyz now";

  it.each(["streamingForward", "forward+stream"] as const)(
    "is redacted in the token events (%s): each token waits for its word, which is scanned whole",
    async (mode) => {
      const memory = new MemorySink();
      configure({ sinks: [{ sink: memory, delivery: { flushIntervalMs: 1 } }] });
      const { service } = scriptedAI([{ content: `Answer: ${ANSWER}`, chunkSize: 3 }]);
      const program = instrumentAx(ax("question:string -> answer:string"));
      if (mode === "streamingForward") {
        for await (const _ of program.streamingForward(service, { question: "q" }));
      } else {
        await program.forward(service, { question: "q" }, { stream: true });
      }

      await flush(2_000);
      const tokens = memory.events.filter((e) => e.event_type === "token");
      expect(tokens.length).toBeGreaterThan(10);
      expect(tokens.map((e) => e.data.token_index)).toEqual(tokens.map((_, i) => i));
      // Tokens are consecutive pieces of the answer: none holds a piece of a key the joined text does not.
      expect(tokens.map((e) => e.data.token).join("")).toBe("use sk-[REDACTED] with Bearer [REDACTED] now");
      const end = memory.events.find((e) => e.event_type === "end");
      expect(end?.data.token_count).toBe(tokens.length);
      expect(JSON.stringify(memory.events)).not.toContain("PLANTED");
    },
  );
});
