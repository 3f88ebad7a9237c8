import { afterEach, describe, expect, it } from "vitest";
import { createKeyRedactor } from "../events/redact";
import { MemorySink } from "../sinks/memory-sink";
import { DEFAULT_REDACT_KEYS, type StreamllOptions } from "./configure";
import { createSpan } from "./context";
import { instrument } from "./instrument";
import { configure, emitSpanEvent, flush, shutdown } from "./runtime";
import { emit, trace } from "./trace";

const quiet = { warn: () => undefined, error: () => undefined };

function setup(options: Omit<StreamllOptions, "sinks"> = {}): MemorySink {
  const sink = new MemorySink();
  configure({ sinks: [{ sink, delivery: { flushIntervalMs: 1 } }], logger: quiet, ...options });
  return sink;
}

async function wire(sink: MemorySink): Promise<string[]> {
  await flush(2_000);
  return sink.encoded.map((e) => e.json);
}

/** Ids, timestamps and durations differ between runs; everything else must not. */
function normalise(json: string): string {
  return json
    .replace(/"(event_id|execution_id|span_id|parent_span_id)":"[\w-]+"/g, '"$1":"ID"')
    .replace(/"timestamp":"[^"]+"/g, '"timestamp":"TS"')
    .replace(/"duration_ms":[\d.e-]+/g, '"duration_ms":0');
}

const error = new Error("failed", { cause: new TypeError("inner") });

async function scenario(): Promise<void> {
  const answer = instrument(
    async function answer(_question: unknown) {
      await trace("retrieval", async () => "passages", {
        data: { k: 5, password: "p" },
        includeOutputs: true,
      });
      emit("retrieved", {
        count: 2,
        apiKey: "key",
        nested: [{ Authorization: "Bearer x" }],
        when: new Date(0),
      });
      return {
        text: "42",
        secret: "s",
        big: 12n,
        tags: new Set(["a"]),
        bytes: new Uint8Array([1, 2, 3]),
        error,
      };
    },
    { name: "QA", tags: { team: "search" } },
  );
  await answer({
    question: "why?",
    password: "hunter2",
    map: new Map([["cookie", "c"]]),
    list: [1, "two", null],
  });
  const stream = instrument(async function* tokens() {
    yield "Hel";
    yield { delta: "lo" };
    return { done: true, access_token: "t" };
  });
  for await (const _ of stream()) {
    // consume
  }
  emit("outside", { value: Number.NaN, missing: undefined, fn: () => 1 });
  // Names and tags built from data: a span named after the URL it fetched, an event type quoting a header.
  await trace(
    "GET https://bob:Pl4nted-Pw0rd@api.test/v1?api_key=Pl4ntedKey0",
    async () => {
      emit("sent Bearer Pl4ntedTok3n-abcdef", {
        n: 1,
        headers: [
          ["x-api-key", "Pl4ntedPair0"],
          ["accept", "application/json"],
        ],
        env: [
          { name: "OPENAI_API_KEY", value: "Pl4ntedEnv0" },
          { name: "REGION", value: "eu" },
        ],
        request: Buffer.from("GET / HTTP/1.1\r\nAuthorization: Bearer Pl4ntedBin0123456789\r\n"),
        image: new Uint8Array([137, 80, 78, 71]),
        copied: { $bytes: Buffer.from("password=Pl4ntedB64x").toString("base64"), length: 20 },
      });
    },
    { tags: { api_key: "Pl4ntedTag0", region: "eu" } },
  );
}

afterEach(async () => {
  await shutdown(2_000);
});

describe("event encoding in the runtime", () => {
  it("writes the same JSON whether events take the per-span fast path or the general encoder", async () => {
    const fastSink = setup({ tags: { env: "test", deploy_token: "Pl4ntedTag1" } });
    await scenario();
    const fastPath = (await wire(fastSink)).map(normalise);
    await shutdown(2_000);

    // A redact function sends every event through sanitise → redact → encodeEvent.
    const keyRedactor = createKeyRedactor(DEFAULT_REDACT_KEYS);
    const generalSink = setup({
      tags: { env: "test", deploy_token: "Pl4ntedTag1" },
      redact: (event) => keyRedactor(event),
    });
    await scenario();
    const generalPath = (await wire(generalSink)).map(normalise);

    expect(fastPath.length).toBeGreaterThanOrEqual(10);
    expect(fastPath).toEqual(generalPath);
    const all = fastPath.join("\n");
    // Map entries are pairs in an array, not keys: `cookie` there is data, as it is for the key redactor.
    for (const secret of ["hunter2", "Bearer x", '"key"', '"s"', '"t"', '"p"', "Pl4nted"])
      expect(all).not.toContain(secret);
    expect(all).toContain('"module_name":"GET https://bob:[REDACTED]@api.test/v1?api_key=[REDACTED]"');
    expect(all).toContain('"event_type":"sent Bearer [REDACTED]"');
    expect(all).toContain('"headers":[["x-api-key","[REDACTED]"],["accept","application/json"]]');
    expect(all).toContain(
      '"env":[{"name":"OPENAI_API_KEY","value":"[REDACTED]"},{"name":"REGION","value":"eu"}]',
    );
    // Binary data whose bytes read as a credential is not written; other bytes are.
    expect(all).toContain('"request":{"$bytes":"[REDACTED]","length":60}');
    expect(all).toContain('"image":{"$bytes":"iVBORw==","length":4}');
    expect(all).toContain('"copied":{"$bytes":"[REDACTED]","length":20}');
    expect(all).toContain(
      '"tags":{"env":"test","deploy_token":"[REDACTED]","api_key":"[REDACTED]","region":"eu"}',
    );
    expect(all).toContain('"password":"[REDACTED]"');
  });

  it("cuts a long string once, so the marker counts the characters actually dropped", async () => {
    const sink = setup();
    const echo = instrument(async (text: string) => text.length);
    await echo("a".repeat(20_000));
    emit("long", { text: "b".repeat(20_000) });
    await flush(2_000);
    const events = sink.events;
    const start = events.find((e) => e.event_type === "start");
    const long = events.find((e) => e.event_type === "long");
    expect(start?.data.inputs).toBe(`${"a".repeat(16_384)}…[truncated 3616 chars]`);
    expect(long?.data.text).toBe(`${"b".repeat(16_384)}…[truncated 3616 chars]`);
  });

  it("replaces lone surrogates and keeps oversized events within the cap", async () => {
    const sink = setup({ encode: { maxEventBytes: 4096 } });
    emit("odd", { text: "a\ud800b", [String.fromCharCode(0xdc00)]: 1 });
    emit("huge", { text: "x".repeat(10_000), list: Array.from({ length: 500 }, (_, i) => `item ${i}`) });
    await flush(2_000);
    const [odd, huge] = sink.encoded;
    expect(JSON.parse(odd?.json ?? "{}").data).toEqual({ text: "a\ufffdb", "\ufffd": 1 });
    expect(huge?.bytes).toBeLessThanOrEqual(4096);
    for (const encoded of sink.encoded) expect(encoded.bytes).toBe(Buffer.byteLength(encoded.json, "utf8"));
  });

  it("counts in each marker of a shrunk event what the data held, not what a first pass kept", async () => {
    for (const options of [{}, { redact: [] as string[] }]) {
      const sink = setup(options);
      const pad = "-padding".repeat(8);
      const list = Array.from({ length: 5_000 }, (_, i) => `item ${i}${pad}`);
      const map = new Map(list.map((item, i) => [i, item]));
      const object = Object.fromEntries(list.slice(0, 3_000).map((item, i) => [`key${i}`, item]));
      emit("array", { list });
      emit("map", { map });
      emit("object", { object });
      emit("string", { text: "s".repeat(200_000), password: "hunter2" });
      await flush(2_000);
      const [array, mapped, keyed, text] = sink.events.map((e) => e.data);
      const kept = array?.list as string[];
      expect(kept.at(-1)).toBe(`[… ${5_000 - (kept.length - 1)} more items]`);
      expect(kept.length).toBeLessThan(1_000);
      const entries = ((mapped?.map ?? { $map: [] }) as { $map: unknown[] }).$map;
      expect(entries.at(-1)).toBe(`[… ${5_000 - (entries.length - 1)} more items]`);
      const keys = keyed?.object as Record<string, unknown>;
      expect(keys.$more_keys).toBe(3_000 - (Object.keys(keys).length - 1));
      // A string is cut once, from the data as given: to maxStringLength, the rest of its scanned window counted.
      expect(text?.text).toMatch(/^s{16384}…\[truncated \d+ chars\]$/);
      expect(text?.password).toBe(options.redact === undefined ? "[REDACTED]" : "hunter2");
      for (const encoded of sink.encoded) expect(encoded.bytes).toBeLessThanOrEqual(65_536);
      await shutdown(1_000);
    }
  });

  it("honours a filter that edits the event it is shown", async () => {
    const sink = setup({
      eventFilter: (event) => {
        if (event.event_type === "drop") return false;
        if (event.event_type === "rename") {
          event.event_type = "renamed";
          (event as unknown as Record<string, unknown>).extra = { added: true };
        }
        return true;
      },
    });
    emit("drop");
    emit("rename", { password: "p" });
    emit("keep", { apiKey: "k", n: 1 });
    await flush(2_000);
    const [renamed, kept] = sink.encoded;
    expect(sink.encoded).toHaveLength(2);
    expect(renamed?.event_type).toBe("renamed");
    expect(JSON.parse(renamed?.json ?? "{}")).toMatchObject({
      extra: { added: true },
      data: { password: "[REDACTED]" },
    });
    expect(JSON.parse(kept?.json ?? "{}").data).toEqual({ apiKey: "[REDACTED]", n: 1 });
  });

  it("redacts the events a getter emits while its own event's data is being encoded", async () => {
    const sink = setup();
    const data = {
      get nested() {
        emit("inner", { password: "inner-secret", list: [{ secret: "deep" }] });
        return { token_count: 1, secret: "outer-secret" };
      },
      apiKey: "k",
    };
    emit("outer", data);
    const json = (await wire(sink)).join("\n");
    expect(json).not.toMatch(/inner-secret|outer-secret|deep|"k"/);
    expect(sink.events.map((e) => e.event_type).sort()).toEqual(["inner", "outer"]);
  });

  it("writes each span's own fields when spans of one module differ in method, step or version", async () => {
    const sink = setup();
    const forward = createSpan(undefined, "QA", "forward", null, undefined);
    const step = createSpan(forward, "QA", "forward", "retrieval", undefined);
    const other = createSpan(undefined, "QA", "streamingForward", null, { team: "x" });
    const versioned = createSpan(undefined, "QA", "forward", null, undefined);
    versioned.moduleVersion = "1.2.0";
    versioned.codeSignature = "sig-a";
    for (let round = 0; round < 2; round++) {
      for (const span of [forward, step, other, versioned]) emitSpanEvent(span, "tick", { round });
      versioned.codeSignature = "sig-b";
    }
    await flush(2_000);
    const seen = sink.events.map((e) => [e.method_name, e.operation, e.tags.team ?? "", e.code_signature]);
    const expected = [
      ["forward", null, "", null],
      ["forward", "retrieval", "", null],
      ["streamingForward", null, "x", null],
      ["forward", null, "", "sig-a"],
    ];
    expect(seen).toEqual([...expected, ...expected.slice(0, 3), ["forward", null, "", "sig-b"]]);
    expect(sink.events.filter((e) => e.module_version === "1.2.0")).toHaveLength(2);
  });

  it("picks up new global tags after configure()", async () => {
    const first = setup({ tags: { build: "1" } });
    const work = instrument(async function work() {
      return 1;
    });
    await work();
    await flush(2_000);
    expect(first.events.every((e) => e.tags.build === "1")).toBe(true);
    const second = setup({ tags: { build: "2" } });
    await work();
    await flush(2_000);
    expect(second.events.map((e) => e.tags.build)).toEqual(["2", "2"]);
  });
});
