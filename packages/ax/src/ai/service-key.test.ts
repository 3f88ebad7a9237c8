import { ai, ax } from "@ax-llm/ax";
import { afterEach, describe, expect, it } from "vitest";
import { instrumentAx } from "../instrument/instrument-ax";
import { collect, setup, teardown, warnings } from "../test-support/setup";
import { serviceKeys } from "./traced-ai-service";

afterEach(teardown);

/** A key with no prefix any pattern knows: only its exact value can hide it. */
const KEY = "PLANTEDKEY7f3c9a1b2d4e6f80";

/** A `fetch` that fails the way a provider or proxy may: quoting the key it was sent, bare. */
function failingFetch(mode: "throw" | "401") {
  const sent: string[] = [];
  const fetch = async (_input: unknown, init?: { headers?: unknown }): Promise<Response> => {
    sent.push(
      JSON.stringify(
        Object.fromEntries(new Headers(init?.headers as ConstructorParameters<typeof Headers>[0]).entries()),
      ),
    );
    if (mode === "throw") throw new Error(`proxy refused credentials ${KEY} for this request`);
    return new Response(
      JSON.stringify({ error: { message: `Invalid API key ${KEY} for this organization` } }),
      {
        status: 401,
        headers: { "content-type": "application/json" },
      },
    );
  };
  return { fetch: fetch as typeof globalThis.fetch, sent };
}

describe("an AI service's API key quoted by an error", () => {
  for (const provider of ["mistral", "anthropic"] as const) {
    for (const mode of ["throw", "401"] as const) {
      for (const stream of [false, true]) {
        it(`is hidden in every event (${provider}, fetch ${mode}${stream ? ", streamed" : ""})`, async () => {
          const sink = setup({ versionTracking: true });
          const failing = failingFetch(mode);
          const llm = ai({
            name: provider,
            apiKey: KEY,
            options: { fetch: failing.fetch, retry: { maxRetries: 0 } },
          });
          const program = instrumentAx(ax("question:string -> answer:string"), { name: "keyed" });
          await expect(program.forward(llm, { question: "q" }, { maxRetries: 0, stream })).rejects.toThrow();
          // The key really was sent, in the header this provider uses.
          expect(failing.sent.length).toBeGreaterThan(0);
          expect(failing.sent.every((headers) => headers.includes(KEY))).toBe(true);

          const events = await collect(sink);
          const failed = events.filter((e) => e.event_type === "llm_call");
          expect(failed.length).toBeGreaterThan(0);
          const error = events.find((e) => e.event_type === "error");
          expect(error).toBeDefined();
          if (mode === "throw") {
            // Ax passes the thrown message on: the key's place in it shows it was hidden, not dropped.
            for (const event of failed) expect(String(event.data.error_message)).toContain("[REDACTED]");
            expect(String(error?.data.error_message)).toContain("[REDACTED]");
          }
          for (const event of events) expect(JSON.stringify(event)).not.toContain(KEY);
          expect(warnings.join("\n")).not.toContain(KEY);
        });
      }
    }
  }

  it("is hidden when a streamed reply breaks off with an error quoting it", async () => {
    const sink = setup();
    const encoder = new TextEncoder();
    const chunk = {
      id: "c1",
      object: "chat.completion.chunk",
      created: 1,
      model: "m",
      choices: [{ index: 0, delta: { content: "Answer: Pa" }, finish_reason: null }],
    };
    const fetch = async (): Promise<Response> => {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) controller.error(new Error(`upstream closed for key ${KEY}`));
          else controller.enqueue(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
          sent = true;
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
    };
    const llm = ai({
      name: "mistral",
      apiKey: KEY,
      options: { fetch: fetch as typeof globalThis.fetch, retry: { maxRetries: 0 } },
    });
    const program = instrumentAx(ax("question:string -> answer:string"), { name: "keyed" });
    await expect(program.forward(llm, { question: "q" }, { maxRetries: 0, stream: true })).rejects.toThrow();

    const events = await collect(sink);
    const failed = events.filter((e) => e.event_type === "llm_call" && e.data.error_message !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    for (const event of failed) expect(String(event.data.error_message)).toContain("[REDACTED]");
    for (const event of events) expect(JSON.stringify(event)).not.toContain(KEY);
    expect(warnings.join("\n")).not.toContain(KEY);
  });
});

describe("serviceKeys", () => {
  it("finds the key in the credential headers only, with and without its scheme", async () => {
    const service = {
      headers: async () => ({
        Authorization: `Bearer ${KEY}`,
        "anthropic-version": "2023-06-01",
        "x-api-key": `${KEY}-second`,
      }),
    };
    expect((await serviceKeys(service)).sort()).toEqual([`${KEY}-second`, `Bearer ${KEY}`, KEY].sort());
  });

  it("reads the key of the provider AxAI delegates to, and calls no credential provider", async () => {
    let asked = 0;
    const llm = ai({
      name: "mistral",
      apiKey: KEY,
      credentialProvider: async () => {
        asked += 1;
        return { Authorization: "Bearer other" };
      },
    });
    expect(await serviceKeys(llm)).toContain(KEY);
    expect(asked).toBe(0);
  });

  it("finds nothing on a service without a key, or one whose header builder fails", async () => {
    expect(await serviceKeys({})).toEqual([]);
    expect(
      await serviceKeys({
        headers: async () => {
          throw new Error("no key");
        },
      }),
    ).toEqual([]);
  });
});
