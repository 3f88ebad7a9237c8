import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { instrument } from "../instrument/instrument";
import { configure, shutdown } from "../instrument/runtime";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { v, validateOptions } from "./schema";

// Unknown keys that are also names of Object.prototype members are unknown options like any other: reported
// at their path, never as "could not be read" for the whole object.

function issuesOf(fn: () => unknown): readonly { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as ConfigurationError).issues;
  }
  throw new Error("expected a ConfigurationError");
}

afterEach(async () => {
  await shutdown(2_000);
});

describe("unknown keys named like Object.prototype members", () => {
  const schema = v.object<{ name?: string; nested?: { size?: number } }>({
    name: v.string().optional(),
    nested: v.object<{ size?: number }>({ size: v.number().optional() }).optional(),
  });

  it.each([
    "constructor",
    "__proto__",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "__defineGetter__",
  ])("reports %s as an unknown option at its path", (key) => {
    const top = issuesOf(() => validateOptions("test", schema, JSON.parse(`{"${key}": 1}`)));
    expect(top).toEqual([{ path: key, message: expect.stringContaining("unknown option") }]);
    const nested = issuesOf(() =>
      validateOptions("test", schema, JSON.parse(`{"nested": {"size": 1, "${key}": 1}}`)),
    );
    expect(nested).toEqual([{ path: `nested.${key}`, message: expect.stringContaining("unknown option") }]);
  });

  it("reports them through configure(), instrument() and sink constructors", () => {
    expect(issuesOf(() => configure({ constructor: 1 } as never))).toEqual([
      { path: "constructor", message: expect.stringContaining("unknown option") },
    ]);
    expect(issuesOf(() => configure(JSON.parse('{"__proto__":{}}')))).toEqual([
      { path: "__proto__", message: expect.stringContaining("unknown option") },
    ]);
    expect(issuesOf(() => instrument(function f() {}, { constructor: 1 } as never))).toEqual([
      { path: "constructor", message: expect.stringContaining("unknown option") },
    ]);
    expect(
      issuesOf(
        () =>
          new JsonlFileSink({
            path: "/nonexistent/x.jsonl",
            rotate: { maxBytes: 1, constructor: 1 },
          } as never),
      ),
    ).toEqual([{ path: "rotate.constructor", message: expect.stringContaining("unknown option") }]);
  });

  it("names a listed method called constructor or __proto__ that the target lacks by its index", () => {
    const target = { forward() {} };
    expect(issuesOf(() => instrument(target, { methods: ["__proto__"] }))).toEqual([
      { path: "methods[0]", message: expect.stringContaining("not a method") },
    ]);
  });
});
