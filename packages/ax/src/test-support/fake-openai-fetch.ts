/**
 * A `fetch` for Ax's real OpenAI provider that answers chat completions locally (JSON, or server-sent events
 * when the request streams), so a provider created with an API key runs its real code path without a network.
 * Records the Authorization headers it was sent, to prove the key was in use.
 */
export function fakeOpenAIFetch(options: { answer: string; status?: number }) {
  const authorizations: string[] = [];
  const fetch = async (input: unknown, init?: { headers?: unknown; body?: unknown }): Promise<Response> => {
    const headers = new Headers(init?.headers as ConstructorParameters<typeof Headers>[0]);
    authorizations.push(headers.get("authorization") ?? "");
    if (options.status !== undefined && options.status !== 200) {
      return new Response(
        JSON.stringify({ error: { message: "Incorrect API key provided", type: "invalid_request_error" } }),
        {
          status: options.status,
          headers: { "content-type": "application/json" },
        },
      );
    }
    const body = JSON.parse(String(init?.body ?? "{}")) as { stream?: boolean; model?: string };
    const usage = { prompt_tokens: 21, completion_tokens: 4, total_tokens: 25 };
    const model = body.model ?? "gpt-4o-mini";
    if (body.stream === true) {
      const chunks = [
        {
          id: "c1",
          object: "chat.completion.chunk",
          created: 1,
          model,
          choices: [{ index: 0, delta: { role: "assistant", content: options.answer }, finish_reason: null }],
        },
        {
          id: "c1",
          object: "chat.completion.chunk",
          created: 1,
          model,
          choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
          usage,
        },
      ];
      const text = `${chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("")}data: [DONE]\n\n`;
      return new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } });
    }
    void input;
    return new Response(
      JSON.stringify({
        id: "c1",
        object: "chat.completion",
        created: 1,
        model,
        choices: [
          { index: 0, message: { role: "assistant", content: options.answer }, finish_reason: "stop" },
        ],
        usage,
      }),
      { status: 200, headers: { "content-type": "application/json" } },
    );
  };
  return { fetch, authorizations };
}
