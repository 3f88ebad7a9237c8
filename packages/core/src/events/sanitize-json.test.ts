import { describe, expect, it } from "vitest";
import { DEFAULT_ENCODE_LIMITS, MARKERS, resolveLimits, sanitizeJson, truncateString } from "./sanitize-json";

/** The sanitised value must survive JSON unchanged: that is the whole point. */
function roundTrip(value: unknown): unknown {
  const sanitized = sanitizeJson(value);
  const json = JSON.stringify(sanitized);
  expect(typeof json).toBe("string");
  expect(JSON.parse(json)).toEqual(sanitized);
  return sanitized;
}

describe("sanitizeJson: plain JSON", () => {
  it("returns plain JSON data as the very same objects (no copy)", () => {
    const data = { a: 1, b: "two", c: [true, null, { d: 0.5 }], e: Object.create(null) as object };
    const out = sanitizeJson(data);
    expect(out).toBe(data);
  });

  it("copies only the path to a changed value and shares untouched siblings", () => {
    const untouched = { x: [1, 2, 3] };
    const data = { untouched, changed: { v: Number.NaN } };
    const out = sanitizeJson(data) as Record<string, unknown>;
    expect(out).not.toBe(data);
    expect(out.untouched).toBe(untouched);
    expect(out.changed).toEqual({ v: MARKERS.nan });
    expect(data.changed.v).toBeNaN();
  });

  it("keeps -0, booleans and null; key order is preserved", () => {
    expect(Object.is(sanitizeJson(-0), -0)).toBe(true);
    expect(roundTrip({ z: 1, a: false, m: null })).toEqual({ z: 1, a: false, m: null });
    expect(Object.keys(sanitizeJson({ z: 1, a: undefined, m: 2 }) as object)).toEqual(["z", "a", "m"]);
  });
});

describe("sanitizeJson: markers", () => {
  it("marks numbers JSON cannot carry", () => {
    expect(roundTrip([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])).toEqual([
      "[NaN]",
      "[Infinity]",
      "[-Infinity]",
    ]);
  });

  it("keeps undefined visible in objects and arrays, including sparse-array holes", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    const sparse = [1, , 3];
    expect(roundTrip({ a: undefined, list: [undefined, 2], sparse })).toEqual({
      a: "[undefined]",
      list: ["[undefined]", 2],
      sparse: [1, "[undefined]", 3],
    });
    expect(sanitizeJson(undefined)).toBe("[undefined]");
  });

  it("writes BigInt as a string with an n suffix", () => {
    expect(roundTrip({ big: 123n, neg: -(2n ** 70n) })).toEqual({
      big: "123n",
      neg: "-1180591620717411303424n",
    });
  });

  it("marks functions and symbols by name", () => {
    function namedFn() {}
    expect(roundTrip([namedFn, () => 1, class Foo {}, Symbol("desc"), Symbol()])).toEqual([
      "[Function namedFn]",
      "[Function anonymous]",
      "[Function Foo]",
      "[Symbol desc]",
      "[Symbol]",
    ]);
  });

  it("replaces back-references of cycles with [Circular] but keeps shared (acyclic) references", () => {
    const shared = { s: 1 };
    const root: Record<string, unknown> = { shared, again: shared };
    root.self = root;
    const list: unknown[] = [1];
    list.push(list);
    root.list = list;
    expect(roundTrip(root)).toEqual({
      shared: { s: 1 },
      again: { s: 1 },
      self: "[Circular]",
      list: [1, "[Circular]"],
    });
  });

  it("encodes Dates as ISO strings and invalid Dates as [Invalid Date]", () => {
    expect(
      roundTrip({ d: new Date(Date.UTC(2026, 10, 27, 10, 15, 30, 123)), bad: new Date(Number.NaN) }),
    ).toEqual({
      d: "2026-11-27T10:15:30.123Z",
      bad: "[Invalid Date]",
    });
  });

  it("encodes Errors with name, message, truncated stack, code and cause", () => {
    const cause = new TypeError("inner");
    const error = Object.assign(new Error("outer", { cause }), { code: "E_OUTER", secret: "hunter2" });
    error.stack = `Error: outer\n${"    at frame\n".repeat(1000)}`;
    const out = roundTrip({ error }) as { error: { $error: Record<string, unknown> } };
    const encoded = out.error.$error;
    expect(encoded.name).toBe("Error");
    expect(encoded.message).toBe("outer");
    expect(encoded.code).toBe("E_OUTER");
    expect(encoded).not.toHaveProperty("secret");
    expect(typeof encoded.stack).toBe("string");
    expect(encoded.stack as string).toMatch(/…\[truncated \d+ chars\]$/);
    expect((encoded.stack as string).length).toBeLessThan(4200);
    expect((encoded.cause as { $error: Record<string, unknown> }).$error).toMatchObject({
      name: "TypeError",
      message: "inner",
    });
  });

  it("removes passwords of connection URLs from error messages and stacks", () => {
    const error = new Error("amqp://guest:s3cret@mq:5672 closed");
    error.stack = "Error: amqp://guest:s3cret@mq:5672 closed\n    at connect (client.js:1:1)";
    const out = sanitizeJson({ error }) as { error: { $error: Record<string, unknown> } };
    expect(out.error.$error.message).toBe("amqp://guest:[redacted]@mq:5672 closed");
    expect(JSON.stringify(out)).not.toContain("s3cret");
  });

  it("guards error cause cycles", () => {
    const error = new Error("loop");
    (error as { cause?: unknown }).cause = error;
    const out = sanitizeJson(error) as { $error: Record<string, unknown> };
    expect(out.$error.cause).toBe("[Circular]");
  });

  it("encodes Map and Set with $map / $set markers", () => {
    const map = new Map<unknown, unknown>([
      ["a", 1],
      [{ k: 1 }, new Set([1n])],
    ]);
    expect(roundTrip({ map, set: new Set(["x", undefined]) })).toEqual({
      map: {
        $map: [
          ["a", 1],
          [{ k: 1 }, { $set: ["1n"] }],
        ],
      },
      set: { $set: ["x", "[undefined]"] },
    });
  });

  it("encodes binary data as base64 with its byte length", () => {
    const bytes = new Uint8Array([1, 2, 3, 255]);
    expect(
      roundTrip({ u8: bytes, buf: Buffer.from("hi"), ab: bytes.buffer, f64: new Float64Array([1]) }),
    ).toEqual({
      u8: { $bytes: "AQID/w==", length: 4 },
      buf: { $bytes: "aGk=", length: 2 },
      ab: { $bytes: "AQID/w==", length: 4 },
      f64: { $bytes: Buffer.from(new Float64Array([1]).buffer).toString("base64"), length: 8 },
    });
    const view = new Uint8Array([9, 8, 7, 6]).subarray(1, 3);
    expect(sanitizeJson(view)).toEqual({ $bytes: Buffer.from([8, 7]).toString("base64"), length: 2 });
  });

  it("truncates large binary data and says so", () => {
    const out = sanitizeJson(new Uint8Array(10_000), { maxStringLength: 100 }) as Record<string, unknown>;
    expect(out.length).toBe(10_000);
    expect(out.truncated).toBe(true);
    expect(Buffer.from(out.$bytes as string, "base64")).toHaveLength(75);
  });

  it("replaces lone surrogates with U+FFFD in values and keys, keeping valid pairs", () => {
    const out = roundTrip({ "k\uD800": "a\uDC00b", ok: "😀" });
    expect(out).toEqual({ "k\uFFFD": "a\uFFFDb", ok: "😀" });
  });

  it("marks nesting beyond maxDepth", () => {
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 100; i++) {
      const next = {};
      cursor.n = next;
      cursor = next;
    }
    const out = sanitizeJson(deep, { maxDepth: 3 });
    expect(out).toEqual({ n: { n: { n: { n: "[MaxDepth]" } } } });
    expect(JSON.stringify(sanitizeJson(deep))).toContain("[MaxDepth]");
  });

  it("truncates long arrays with a trailing count, and long strings with a suffix", () => {
    const out = sanitizeJson(
      { list: Array.from({ length: 10 }, (_, i) => i), text: "x".repeat(100) },
      { maxArrayLength: 3, maxStringLength: 40 },
    ) as { list: unknown[]; text: string };
    expect(out.list).toEqual([0, 1, 2, "[… 7 more items]"]);
    expect(out.text).toBe(`${"x".repeat(40)}…[truncated 60 chars]`);
  });

  it("counts object keys beyond maxObjectKeys", () => {
    const wide = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
    expect(sanitizeJson(wide, { maxObjectKeys: 2 })).toEqual({ k0: 0, k1: 1, $more_keys: 8 });
  });

  it("does not split a surrogate pair when truncating", () => {
    const s = `${"a".repeat(31)}😀tail`;
    const out = truncateString(s, 32, true);
    expect(out.startsWith(`${"a".repeat(31)}…`)).toBe(true);
    expect(out).not.toContain("\uD83D");
  });
});

describe("sanitizeJson: hostile input never throws", () => {
  it("marks throwing getters and keeps the other keys", () => {
    const obj = {
      ok: 1,
      get bad(): never {
        throw new Error("boom");
      },
    };
    expect(roundTrip(obj)).toEqual({ ok: 1, bad: "[Unreadable]" });
  });

  it("marks proxies whose traps throw, and revoked proxies", () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("trap");
        },
        getPrototypeOf() {
          throw new Error("trap");
        },
      },
    );
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(roundTrip({ hostile, revoked: proxy, ok: true })).toEqual({
      hostile: "[Unreadable]",
      revoked: "[Unreadable]",
      ok: true,
    });
  });

  it("uses toJSON like JSON.stringify does, and marks a throwing toJSON", () => {
    const withToJSON = { toJSON: (key: string) => ({ key, big: 1n }) };
    const throwing = {
      toJSON() {
        throw new Error("nope");
      },
    };
    const self = {
      a: 1,
      toJSON() {
        return this;
      },
    };
    expect(roundTrip({ withToJSON, throwing, self, url: new URL("https://example.com/x") })).toEqual({
      withToJSON: { key: "withToJSON", big: "1n" },
      throwing: "[Unreadable]",
      self: { a: 1, toJSON: "[Function toJSON]" },
      url: "https://example.com/x",
    });
  });

  it("copies class instances into plain objects and unboxes boxed primitives", () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      get length(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const out = roundTrip({ p: new Point(3, 4), s: new String("s"), n: new Number(2), re: /a+/gi });
    expect(out).toEqual({ p: { x: 3, y: 4 }, s: "s", n: 2, re: "/a+/gi" });
    expect(Object.getPrototypeOf((out as { p: object }).p)).toBe(Object.prototype);
  });

  it("records an object with methods (a client, a service) as its type, never walking it", () => {
    class OpenAIClient {
      readonly apiKey = "sk-never-read";
      send(): string {
        return this.apiKey;
      }
    }
    class AzureClient extends OpenAIClient {}
    const anonymous = new (class {
      run(): void {}
    })();
    const withMethodsOnProto = Object.create({ call() {} }) as object;
    const out = roundTrip({
      a: new OpenAIClient(),
      b: [new AzureClient()],
      c: anonymous,
      d: withMethodsOnProto,
    });
    expect(out).toEqual({
      a: { $type: "OpenAIClient" },
      b: [{ $type: "AzureClient" }],
      c: { $type: "anonymous" },
      d: { $type: "anonymous" },
    });
    expect(JSON.stringify(out)).not.toContain("sk-never-read");
  });

  it("never takes keys inherited from a polluted Object.prototype or a class's prototype as data", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.pollutedKey = "sk-proj-INHERITED1234567890";
    try {
      const data = { a: 1, nested: { b: "x" } };
      expect(sanitizeJson(data)).toBe(data);
      expect(JSON.stringify(sanitizeJson({ a: 1, n: Number.POSITIVE_INFINITY }))).toBe(
        '{"a":1,"n":"[Infinity]"}',
      );
    } finally {
      delete proto.pollutedKey;
    }
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    (Point.prototype as unknown as Record<string, unknown>).shared = "inherited";
    expect(sanitizeJson({ p: new Point(1, 2) })).toEqual({ p: { x: 1, y: 2 } });
  });

  it("keeps the first maxObjectKeys keys, values changed or not, and counts the rest", () => {
    const limits = { ...DEFAULT_ENCODE_LIMITS, maxObjectKeys: 3 };
    const unchanged = { a: 1, b: 2, c: 3, d: 4, e: 5 };
    expect(sanitizeJson(unchanged, limits)).toEqual({ a: 1, b: 2, c: 3, [MARKERS.moreKeys]: 2 });
    const changedLate = { a: 1, b: 2, c: 1n, d: 4 };
    expect(sanitizeJson(changedLate, limits)).toEqual({ a: 1, b: 2, c: "1n", [MARKERS.moreKeys]: 1 });
    const changedBeyond = { a: 1, b: 2, c: 3, d: 1n };
    expect(sanitizeJson(changedBeyond, limits)).toEqual({ a: 1, b: 2, c: 3, [MARKERS.moreKeys]: 1 });
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { z: 1, y: undefined });
    expect(sanitizeJson(nullProto)).toEqual({ z: 1, y: MARKERS.undefined });
  });

  it("treats a __proto__ own key as data, not as a prototype", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}, "n": 1e400}') as object;
    const out = sanitizeJson(parsed) as Record<string, unknown>;
    expect(Object.hasOwn(out, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(out))).toEqual(
      JSON.parse('{"__proto__": {"polluted": 1}, "n": "[Infinity]"}'),
    );
  });

  it("survives nesting far deeper than the stack allows when maxDepth is raised to its ceiling", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const out = sanitizeJson(deep, { maxDepth: 256 });
    expect(() => JSON.stringify(out)).not.toThrow();
  });
});

describe("resolveLimits", () => {
  it("uses defaults for missing limits", () => {
    expect(resolveLimits(undefined)).toEqual(DEFAULT_ENCODE_LIMITS);
    expect(resolveLimits({ maxDepth: 8 })).toEqual({ ...DEFAULT_ENCODE_LIMITS, maxDepth: 8 });
  });

  it("rejects limits outside their documented ranges instead of clamping them", () => {
    expect(() =>
      resolveLimits({ maxEventBytes: 10, maxStringLength: Number.NaN, maxDepth: 10_000, maxArrayLength: -5 }),
    ).toThrow(
      "invalid encode limits options: maxEventBytes: expected an integer >= 4096, got 10; maxStringLength: expected an integer between 32 and 1073741824, got NaN; maxDepth: expected an integer between 1 and 256, got 10000; maxArrayLength: expected an integer between 1 and 4294967296, got -5",
    );
  });

  it("rejects limits that cannot be read", () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("no");
        },
      },
    );
    expect(() => resolveLimits(hostile)).toThrow("invalid encode limits options: could not be read");
  });
});
