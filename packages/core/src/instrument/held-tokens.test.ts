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
  it("releases the start of a word longer than MAX_HELD_CHARS instead of holding it without end", () => {
    const { held, out } = holder();
    const piece = "x".repeat(1000);
    for (let i = 0; i < 5; i++) held.add("f", { token: piece });
    expect(5 * piece.length).toBeGreaterThan(MAX_HELD_CHARS);
    // The tokens before the last 1,024 characters or so go out; the rest waits for the word to go on.
    expect(out.length).toBe(3);
    held.flush();
    expect(out.join("")).toBe(piece.repeat(5));
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

describe("HeldTokens: a word longer than MAX_HELD_CHARS", () => {
  /** Compact JSON without whitespace, `length` characters, ending where a string value starts. */
  const blob = (length: number) => `{"blob":"${"A".repeat(length - 16)}","k":"`;
  const chunks = (text: string, size: number) => text.match(new RegExp(`[^]{1,${size}}`, "g")) ?? [];

  /** The tokens a `HeldTokens` given `parts` (then flushed) releases, with the most it held after a token. */
  function released(parts: readonly string[]): { out: string[]; maxHeld: number; maxToken: number } {
    const { held, out } = holder();
    let [added, sent, counted, maxHeld, maxToken] = [0, 0, 0, 0, 0];
    for (const part of parts) {
      held.add("f", { token: part });
      added += part.length;
      maxToken = Math.max(maxToken, part.length);
      while (counted < out.length) sent += (out[counted++] as string).length;
      // Without credentials, every released token is its text: what is not out yet is held.
      maxHeld = Math.max(maxHeld, added - sent);
    }
    held.flush();
    return { out, maxHeld, maxToken };
  }

  it.each([
    ["an sk- key", "sk-proj-PLANTED0123456789abcdef", "sk-proj-PLANTED0123456789abcdef"],
    [
      "a JWT",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDsignature0123456789",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDsignature0123456789",
    ],
    ["a Bearer token", "Bearer PLANTEDabcDEF0123456789", "PLANTEDabcDEF0123456789"],
    ["a URL's password", "postgres://app:PLANTEDpass0123@db:5432/x", "PLANTEDpass0123"],
  ])("keeps %s that the cap falls in whole: no piece of it goes out", (_, credential, secret) => {
    // Every 8 characters of the secret: none may go out.
    const pieces = Array.from({ length: secret.length - 7 }, (_, i) => secret.slice(i, i + 8));
    // 4,086 characters before the secret, as the report had it, then each place the cap can fall in the secret.
    for (let before = MAX_HELD_CHARS - credential.length; before <= MAX_HELD_CHARS; before++) {
      const text = `${blob(before)}${credential}"}`;
      // The text before the secret in one chunk (as the report had it) or in small ones, the secret in 4s.
      for (const size of [before, 7]) {
        const { out } = released([...chunks(blob(before), size), ...chunks(credential, 4), '"}']);
        const joined = out.join("");
        expect(["PLANTED", ...pieces].filter((piece) => joined.includes(piece))).toEqual([]);
        expect(joined).toBe(redactCredentialText(text));
      }
    }
  });

  it("keeps a key out of every event of an instrumented stream, as the report streamed it", async () => {
    const key = "sk-proj-PLANTED0123456789abcdef";
    const events = await streamed([blob(4086), ...chunks(key, 4), '"}']);
    const pieces = Array.from({ length: key.length - 7 }, (_, i) => key.slice(i, i + 8));
    const text = JSON.stringify(events);
    expect(["PLANTED", ...pieces].filter((piece) => text.includes(piece))).toEqual([]);
    expect(
      tokensOf(events)
        .map((t) => t.token)
        .join(""),
    ).toBe(`${blob(4086)}sk-[REDACTED]"}`);
  });

  it("does not cut a URL's password from the `@` that makes it one", () => {
    // The last token boundary 1,024 characters or more before the end is the one between the password and its `@`.
    const url = "x://u:PLANTEDpass";
    const parts = [...chunks(blob(MAX_HELD_CHARS - 18 - 1100), 7), url, `@${"B".repeat(1100)}`, "BBBB"];
    const { out } = released(parts);
    expect(out.join("")).not.toContain("PLANTED");
    expect(out.join("")).toBe(redactCredentialText(parts.join("")));
  });

  it("releases a long text without credentials whole and in order, holding at most the cap", () => {
    const unit = '{"id":"eyJ0","url":"https:x","k":"sk-",';
    const text = unit.repeat(Math.ceil(1_000_000 / unit.length)).slice(0, 1_000_000);
    expect(redactCredentialText(text)).toBe(text);
    const sizes = [1, 4, 7, 3, 16, 2, 9];
    const parts: string[] = [];
    for (let at = 0, i = 0; at < text.length; i++) {
      const size = sizes[i % sizes.length] as number;
      parts.push(text.slice(at, at + size));
      at += size;
    }
    const { out, maxHeld, maxToken } = released(parts);
    expect(out.join("")).toBe(text);
    expect(out).toEqual(parts);
    expect(maxHeld).toBeLessThanOrEqual(MAX_HELD_CHARS + maxToken);
  });
});
