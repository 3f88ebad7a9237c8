import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { nearestName } from "./nearest-name";
import { optionIssues, v, validateOptions } from "./schema";

interface Retry {
  maxAttempts?: number;
  jitter?: number;
}
interface Options {
  url?: string;
  stream?: string;
  maxLen?: number;
  tls?: boolean | { ca?: string; rejectUnauthorized?: boolean };
  retry?: Retry;
  sasl?:
    | { mechanism: "plain"; username: string; password: string }
    | { mechanism: "oauthbearer"; token: () => string };
  tags?: Record<string, string>;
  brokers?: readonly string[];
  client?: { anything?: unknown };
}

const retry = v.object<Retry>({
  maxAttempts: v.integer({ min: 1, allowInfinity: true }).optional(),
  jitter: v.number({ min: 0, max: 1 }).optional(),
});
const schema = v.object<Options>({
  url: v.string({ min: 1 }).optional(),
  stream: v.string({ min: 1 }).optional(),
  maxLen: v.integer({ min: 1 }).optional(),
  tls: v
    .union(
      v.boolean(),
      v.object<{ ca?: string; rejectUnauthorized?: boolean }>({
        ca: v.string().optional(),
        rejectUnauthorized: v.boolean().optional(),
      }),
    )
    .optional(),
  retry: retry.optional(),
  sasl: v
    .variant("mechanism", {
      plain: v.object<{ mechanism: "plain"; username: string; password: string }>({
        mechanism: v.oneOf(["plain"]),
        username: v.string({ min: 1 }),
        password: v.string({ min: 1 }),
      }),
      oauthbearer: v.object<{ mechanism: "oauthbearer"; token: () => string }>({
        mechanism: v.oneOf(["oauthbearer"]),
        token: v.fn<() => string>(),
      }),
    })
    .optional(),
  tags: v.record(v.string()).optional(),
  brokers: v.array(v.string({ pattern: /^[^:]+:\d+$/, expected: "host:port" }), { min: 1 }).optional(),
  client: v.passthrough<{ anything?: unknown }>("a client config").optional(),
});

function messageOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error("no error thrown");
}

describe("nearestName", () => {
  it.each([
    ["urll", "url"],
    ["maxlen", "maxLen"],
    ["tsl", "tls"],
    ["serverles", "serverless"],
    ["stratgy", "strategy"],
    ["streamKey", "stream"],
    ["user", "username"],
    ["credentials", "credential"],
    ["rotation", "rotate"],
  ])("%s → %s", (typo, expected) => {
    expect(
      nearestName(typo, [
        "url",
        "maxLen",
        "tls",
        "serverless",
        "strategy",
        "stream",
        "username",
        "credential",
        "rotate",
      ]),
    ).toBe(expected);
  });

  it("knows other clients' names for the same option, which spelling distance gets wrong", () => {
    expect(nearestName("ssl", ["url", "sasl", "tls"])).toBe("tls");
    expect(nearestName("host", ["hostname", "vhost", "port"])).toBe("hostname");
    expect(nearestName("hostname", ["host", "port"])).toBe("host");
    expect(nearestName("dlq", ["tls", "deadLetterTopic"])).toBe("deadLetterTopic");
    expect(nearestName("maxRetries", ["maxAttempts", "initialDelayMs"])).toBe("maxAttempts");
    expect(nearestName("retries", ["maxQueueSize", "retry", "spill"])).toBe("retry");
    // Only a name that is known: without `tls`, `ssl` is spelled like any other name.
    expect(nearestName("ssl", ["sasl", "url"])).toBe("sasl");
  });

  it("suggests nothing for an unrelated name", () => {
    expect(nearestName("zebra", ["url", "maxLen", "tls"])).toBeUndefined();
  });
});

describe("validateOptions", () => {
  it("accepts valid options and returns them", () => {
    const options = {
      url: "redis://x",
      tls: { ca: "pem" },
      retry: { maxAttempts: Number.POSITIVE_INFINITY },
      sasl: { mechanism: "oauthbearer", token: () => "t" },
      tags: { team: "a" },
      brokers: ["a:1"],
      client: { whatever: 1 },
    };
    expect(validateOptions("Thing", schema, options)).toBe(options);
    expect(validateOptions("Thing", schema.optional(), undefined)).toBeUndefined();
  });

  it("names an unknown key with the nearest known one and the keys of that object", () => {
    expect(messageOf(() => validateOptions("Thing", schema, { urll: "x" }))).toBe(
      "invalid Thing options: urll: unknown option; did you mean `url`? (allowed: url, stream, maxLen, tls, retry, sasl, tags, brokers, client)",
    );
  });

  it("lists the keys of the nested object, not the top level, for a nested typo", () => {
    const message = messageOf(() => validateOptions("Thing", schema, { retry: { maxAtempts: 3 } }));
    expect(message).toContain(
      "retry.maxAtempts: unknown option; did you mean `maxAttempts`? (allowed: maxAttempts, jitter)",
    );
    const tls = messageOf(() => validateOptions("Thing", schema, { tls: { rejectUnauthorised: false } }));
    expect(tls).toContain(
      "tls.rejectUnauthorised: unknown option; did you mean `rejectUnauthorized`? (allowed: ca, rejectUnauthorized)",
    );
  });

  it("checks the variant a discriminator selects", () => {
    const message = messageOf(() =>
      validateOptions("Thing", schema, { sasl: { mechanism: "plain", user: "u", password: "p" } }),
    );
    expect(message).toContain(
      "sasl.user: unknown option; did you mean `username`? (allowed: mechanism, username, password)",
    );
    expect(message).toContain("sasl.username: is required (a non-empty string)");
    expect(messageOf(() => validateOptions("Thing", schema, { sasl: { mechanism: "gssapi" } }))).toContain(
      'sasl.mechanism: expected one of "plain", "oauthbearer", got a string',
    );
  });

  it("names the keys no variant knows when the discriminator is missing (a misspelled `mechanism`)", () => {
    const message = messageOf(() =>
      validateOptions("Thing", schema, { sasl: { mechanisim: "plain", username: "u", password: "p" } }),
    );
    expect(message).toContain("sasl.mechanisim: unknown option; did you mean `mechanism`?");
    expect(message).toContain('sasl.mechanism: expected one of "plain", "oauthbearer", got undefined');
    expect(message).not.toContain("sasl.username");
  });

  it("checks every slot of a sparse array: a hole is reported, not skipped", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    const message = messageOf(() => validateOptions("Thing", schema, { brokers: [, "a:1"] }));
    expect(message).toContain("brokers[0]: expected host:port, got an empty slot");
    expect(optionIssues(schema, { brokers: ["a:1", "b:2"] })).toEqual([]);
  });

  it("refuses options that are not plain objects: inherited keys would be read unchecked", () => {
    class Settings {
      get url() {
        return "redis://h";
      }
      get strem() {
        return "typo";
      }
    }
    for (const options of [new Settings(), Object.create({ strem: "typo" }), new Map([["url", "x"]])]) {
      expect(messageOf(() => validateOptions("Thing", schema, options))).toContain(
        "expected an object written as a plain { … } object, got an object with a prototype",
      );
    }
    expect(messageOf(() => validateOptions("Thing", schema, { tags: new Map() }))).toContain(
      "tags: expected",
    );
    // Objects without a prototype, frozen ones and objects of another realm are plain.
    const bare = Object.assign(Object.create(null), { url: "redis://h" });
    expect(optionIssues(schema, bare)).toEqual([]);
    expect(optionIssues(schema, Object.freeze({ retry: Object.freeze({ jitter: 0.5 }) }))).toEqual([]);
    expect(optionIssues(schema, runInNewContext("({ url: 'redis://h', tags: { a: 'b' } })"))).toEqual([]);
  });

  it("reports type and range problems with the expectation and the kind of value, never a string's text", () => {
    const message = messageOf(() =>
      validateOptions("Thing", schema, {
        maxLen: 0,
        url: 42,
        stream: "",
        retry: { jitter: 2 },
        tags: { team: 1 },
        brokers: ["no-port-secret-value"],
        tls: "yes-secret",
      }),
    );
    expect(message).toContain("maxLen: expected an integer >= 1, got 0");
    expect(message).toContain("url: expected a non-empty string, got a number");
    expect(message).toContain("stream: expected a non-empty string, got an empty string");
    expect(message).toContain("retry.jitter: expected a number between 0 and 1, got 2");
    expect(message).toContain("tags.team: expected a string, got a number");
    expect(message).toContain("brokers[0]: expected host:port, got a string");
    expect(message).toContain("tls: expected true or false or an object, got a string");
    expect(message).not.toContain("secret");
  });

  it("never repeats a number given where something else was expected (a numeric password)", () => {
    const message = messageOf(() =>
      validateOptions("Thing", v.object({ password: v.string() }), { password: 12345678 }),
    );
    expect(message).toContain("password: expected a string, got a number");
    expect(message).not.toContain("12345678");
  });

  it("reports every issue at once, with paths under a prefix", () => {
    const issues = optionIssues(schema, { urll: 1, maxLen: -1 }, "sinks[0]");
    expect(issues.map((issue) => issue.path)).toEqual(["sinks[0].urll", "sinks[0].maxLen"]);
  });

  it("requires required keys and the object itself", () => {
    expect(messageOf(() => validateOptions("Thing", schema, "nope"))).toBe(
      "invalid Thing options: expected an object, got a string",
    );
    expect(messageOf(() => validateOptions("Thing", retry, undefined))).toContain(
      "expected an object, got undefined",
    );
  });

  it("runs refinements only on values of the right shape", () => {
    const ordered = v
      .object<{ min?: number; max?: number }>({ min: v.number().optional(), max: v.number().optional() })
      .refine((value, report) => {
        if ((value.max ?? 0) < (value.min ?? 0)) report("must be >= min", "max");
      });
    expect(messageOf(() => validateOptions("Range", ordered, { min: 2, max: 1 }))).toBe(
      "invalid Range options: max: must be >= min",
    );
    expect(messageOf(() => validateOptions("Range", ordered, { min: "a", max: 1 }))).toBe(
      "invalid Range options: min: expected a number, got a string",
    );
  });

  it("extends a schema with the keys of a derived options type, keeping its refinements", () => {
    const base = v.object<{ a?: number }>({ a: v.number().optional() }).refine((value, report) => {
      if (value.a === 13) report("unlucky", "a");
    });
    const derived = base.extend<{ a?: number; b?: string }>({ b: v.string().optional() });
    expect(derived.keys).toEqual(["a", "b"]);
    expect(messageOf(() => validateOptions("D", derived, { a: 13 }))).toContain("a: unlucky");
    expect(messageOf(() => validateOptions("D", derived, { c: 1 }))).toContain("(allowed: a, b)");
  });
});
