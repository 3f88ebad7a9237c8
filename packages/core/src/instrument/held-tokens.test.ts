import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { JsonObject, StreamllEvent } from "../events/event-schema";
import { redactCredentialText } from "../events/redact";
import { MemorySink } from "../sinks/memory-sink";
import { HeldTokens, isWordBreak, MAX_HELD_CHARS } from "./held-tokens";
import { instrument } from "./instrument";
import { configure, flush, shutdown } from "./runtime";

const logger = { warn: () => {}, error: () => {} };

afterEach(async () => {
  await shutdown(2_000);
});

/** Every event a stream of `chunks` records, with the default redaction unless `redact` is given. */
async function streamed(chunks: readonly unknown[], redact?: readonly string[]): Promise<StreamllEvent[]> {
  const sink = new MemorySink();
  configure({
    sinks: [{ sink, delivery: { flushIntervalMs: 1 } }],
    logger,
    ...(redact === undefined ? {} : { redact }),
  });
  const stream = instrument(async function* generate() {
    for (const chunk of chunks) yield chunk;
  });
  for await (const _ of stream());
  await flush(2_000);
  return sink.events;
}

function tokensOf(events: readonly StreamllEvent[]): JsonObject[] {
  return events.filter((e) => e.event_type === "token").map((e) => e.data);
}

/** A token collector over a `HeldTokens`, for the cases that need no stream around it. */
function holder(): { held: HeldTokens; out: string[] } {
  const out: string[] = [];
  // A token sent at once (no time of its own) relies on the scan the emit path gives every string of an event.
  const held = new HeldTokens((data, at) => {
    const token = data.token as string;
    out.push(at === undefined ? redactCredentialText(token) : token);
  });
  return { held, out };
}

describe("isWordBreak", () => {
  it.each([
    ["", 0, true],
    ["hello", 5, false],
    ["hello ", 6, true],
    ["hello world", 5, true],
    ["hello world", 3, false],
    ["key sk-proj", 7, false],
    ["send it with Bearer ", 20, false],
    ["send it with Bearer abc", 19, false],
    ["send it with Bearer abc", 20, false],
    ["(Bearer\n\tab", 9, false],
    ["xBearer ab", 7, true],
    ["BASIC  dXNl", 6, false],
    ["a Bearerish b", 11, true],
    ["日本語のテキスト", 8, true],
    ["日本語のテキスト", 3, true],
    ["日本語sk-abc", 3, true],
    ["sk-abc日本", 6, true],
    ["用https://用户:pass", 1, true],
    ["用https://用户:pass", 10, false],
    ["emoji 🙂ok", 8, true],
    ["tab\there", 3, true],
    ["nbsp\u00a0here", 5, true],
    ["a,b", 2, false],
  ])("%j at %i: %s", (text, at, expected) => {
    expect(isWordBreak(text, at)).toBe(expected);
  });
});

describe("token events of a stream", () => {
  it("carry no part of a credential streamed in pieces; counts, indexes and the joined text stay whole", async () => {
    const chunks = [
      "My key is sk-",
      "proj-",
      "PLANTED",
      "abc1234",
      "5 and",
      " auth Bear",
      "er abc",
      "DEF0123456",
      "! done",
    ];
    const events = await streamed(chunks);
    const tokens = tokensOf(events);
    expect(tokens.map((t) => t.token_index)).toEqual(chunks.map((_, i) => i));
    const joined = tokens.map((t) => t.token).join("");
    expect(joined).toBe("My key is sk-[REDACTED] and auth Bearer [REDACTED]! done");
    const text = JSON.stringify(events);
    for (const piece of ["PLANTED", "abc1234", "DEF0123456"]) expect(text).not.toContain(piece);
    const end = events.at(-1)?.data ?? {};
    expect(end.token_count).toBe(chunks.length);
    expect(end.outputs).toEqual({ output: joined });
  });

  it("go out as their words complete, each stamped with the time its chunk arrived", async () => {
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger });
    const stream = instrument(async function* generate() {
      yield "Hello";
      yield " wor";
      await new Promise((resolve) => setTimeout(resolve, 30));
      yield "ld";
      yield " again";
    })();
    await stream.next();
    await stream.next();
    await flush(2_000);
    expect(tokensOf(sink.events).map((t) => t.token)).toEqual(["Hello"]);
    for await (const _ of stream);
    await flush(2_000);
    const tokens = sink.events.filter((e) => e.event_type === "token");
    expect(tokens.map((e) => e.data.token)).toEqual(["Hello", " wor", "ld", " again"]);
    const times = tokens.map((e) => Date.parse(e.timestamp));
    // " wor" arrived before the pause, though it went out with "ld" after it.
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(20);
  });

  it("are not held for text without spaces: CJK goes out character by character", async () => {
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger });
    const stream = instrument(async function* generate() {
      yield "日本";
      yield "語の";
      yield "テキスト";
    })();
    await stream.next();
    await stream.next();
    await flush(2_000);
    expect(tokensOf(sink.events).map((t) => t.token)).toEqual(["日本", "語の"]);
    for await (const _ of stream);
  });

  it("go out as they come with redact: [] (no scan, nothing to wait for)", async () => {
    const sink = new MemorySink();
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger, redact: [] });
    const stream = instrument(async function* generate() {
      yield "sk-";
      yield "abc";
    })();
    await stream.next();
    await flush(2_000);
    expect(tokensOf(sink.events).map((t) => t.token)).toEqual(["sk-"]);
    for await (const _ of stream);
  });

  it("are held per field and sample: Ax deltas interleaving two fields are each scanned whole", async () => {
    const chunks = [
      { version: 0, index: 0, delta: { reasoning: "use sk-" } },
      { version: 0, index: 0, delta: { answer: "the key sk-" } },
      { version: 0, index: 0, delta: { reasoning: "ABCDEFGH1234" } },
      { version: 0, index: 0, delta: { answer: "ZYXWVUTS9876 ok" } },
    ];
    const tokens = tokensOf(await streamed(chunks));
    expect(tokens.map((t) => t.token_index)).toEqual([0, 1, 2, 3]);
    const joined = (field: string) =>
      tokens
        .filter((t) => t.field === field)
        .map((t) => t.token)
        .join("");
    expect(joined("reasoning")).toBe("use sk-[REDACTED]");
    expect(joined("answer")).toBe("the key sk-[REDACTED] ok");
  });

  it("are sent before a retry marker: a restarted attempt's held words still belong to the one before", async () => {
    const events = await streamed([
      { version: 0, index: 0, delta: { answer: "first" } },
      { version: 1, index: 0, delta: { answer: "second" } },
    ]);
    expect(events.map((e) => e.event_type)).toEqual(["start", "token", "retry", "token", "end"]);
  });
});

describe("HeldTokens", () => {
  it("releases a word longer than MAX_HELD_CHARS instead of holding it without end", () => {
    const { held, out } = holder();
    const piece = "x".repeat(1000);
    for (let i = 0; i < 5; i++) held.add("f", { token: piece });
    expect(out.length).toBe(5);
    expect(5 * piece.length).toBeGreaterThan(MAX_HELD_CHARS);
  });

  it("joins to what scanning the whole text gives, however the text is cut into tokens", () => {
    const secret = fc.constantFrom(
      "sk-proj-PLANTED0123456789",
      "Bearer abcDEF0123456789",
      "BASIC\tdXNlcjpwYXNzd29yZA==",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
      "ghp_PLANTED0123456789abcdef",
      "AKIAABCDEFGHIJKLMNOP",
      "postgres://app:PLANTEDpass@db:5432/x",
      "https://用户:PLANTEDpass@host",
      "AIzaSyPLANTED0123456789abcdefghijklmnop",
    );
    const filler = fc.constantFrom(
      "the",
      "key",
      " ",
      "\n",
      "\t",
      "\u00a0",
      "日本語",
      "(",
      "x",
      "Bearer",
      "basic",
      "sk",
      "-",
      ".",
      "🙂",
      "://",
      ":",
      "@",
      "/",
      "AKIA",
      "eyJ",
      "0123456789",
      "https",
      "用户",
      "ghp_",
      "Z",
    );
    const text = fc.array(fc.oneof(secret, filler), { maxLength: 20 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 30 }), (whole, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
        const { held, out } = holder();
        let from = 0;
        for (const point of [...points, whole.length]) {
          if (point > from) held.add("f", { token: whole.slice(from, point) });
          from = point;
        }
        held.flush();
        expect(out.join("")).toBe(redactCredentialText(whole));
      }),
      { numRuns: Number(process.env.HELD_TOKENS_RUNS ?? 2000) },
    );
  });
});
