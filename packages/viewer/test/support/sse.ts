/** A Server-Sent Events client for tests: collects every message of an event stream. */
export interface SseMessage {
  readonly event: string;
  readonly data: string;
}

export interface EventStream {
  readonly status: number;
  readonly headers: Headers;
  readonly messages: SseMessage[];
  /** Resolves once a message satisfies `predicate` (checks those already received too). */
  waitFor(predicate: (message: SseMessage) => boolean, what: string, timeoutMs?: number): Promise<SseMessage>;
  /** Events of every `events` message received so far, parsed. */
  events(): { execution_id: string; event_type: string; data: Record<string, unknown> }[];
  close(): void;
}

export async function openEventStream(url: string): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const messages: SseMessage[] = [];
  const listeners = new Set<() => void>();
  if (response.ok && response.body !== null) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buffer = "";
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end = buffer.indexOf("\n\n");
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length > 0) messages.push({ event, data: data.join("\n") });
            end = buffer.indexOf("\n\n");
          }
          for (const listener of listeners) listener();
        }
      } catch {
        // aborted
      }
    })();
  }
  return {
    status: response.status,
    headers: response.headers,
    messages,
    waitFor(predicate, what, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (found === undefined) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        if (!check()) listeners.add(check);
      });
    },
    events() {
      return messages.filter((m) => m.event === "events").flatMap((m) => JSON.parse(m.data));
    },
    close() {
      controller.abort();
    },
  };
}
