import ts from "typescript";
import { describe, expect, it } from "vitest";
import { computeCodeSignature, computeCodeSignatureDetails } from "./code-signature";
import { ORIGINAL_FUNCTION } from "./function-source";
import type { CodeSignatureStrategyName } from "./options";

/** Evaluates a class or function expression, so each test can vary the source text of one definition. */
function load<T = Function>(source: string): T {
  return new Function(`"use strict"; return (${source});`)() as T;
}

const STRATEGIES: CodeSignatureStrategyName[] = ["ast", "ast-deps", "source", "signature"];

const BASE = `class Qa {
  async forward(question) {
    const context = await this.retrieve(question);
    return { answer: context.length > 0 ? context[0] : "none" };
  }
  retrieve(question) { return [question.toUpperCase()]; }
}`;

const REFORMATTED = `class Qa {
  // Answers one question.
  async forward( question ) {
    /* look it up first */
    const context = await this.retrieve(question)
    return {answer: context.length>0 ? context[0] : 'none'}
  }
  retrieve(question) { return [question.toUpperCase()]; }
}`;

const LOGIC_CHANGED = `class Qa {
  async forward(question) {
    const context = await this.retrieve(question);
    return { answer: context.length > 1 ? context[0] : "none" };
  }
  retrieve(question) { return [question.toUpperCase()]; }
}`;

const LOCAL_RENAMED = `class Qa {
  async forward(question) {
    const passages = await this.retrieve(question);
    return { answer: passages.length > 0 ? passages[0] : "none" };
  }
  retrieve(question) { return [question.toUpperCase()]; }
}`;

const HELPER_CHANGED = `class Qa {
  async forward(question) {
    const context = await this.retrieve(question);
    return { answer: context.length > 0 ? context[0] : "none" };
  }
  retrieve(question) { return [question.toLowerCase()]; }
}`;

const PARAM_ADDED = `class Qa {
  async forward(question, options) {
    const context = await this.retrieve(question);
    return { answer: context.length > 0 ? context[0] : "none" };
  }
  retrieve(question) { return [question.toUpperCase()]; }
}`;

function sig(
  source: string,
  strategy: CodeSignatureStrategyName,
  method: string | null = "forward",
): string | null {
  return computeCodeSignature(load(source), { strategy, method });
}

describe("computeCodeSignature: behaviour per strategy", () => {
  it("returns 12 lowercase hex characters for every built-in strategy", () => {
    for (const strategy of STRATEGIES) {
      expect(sig(BASE, strategy)).toMatch(/^[0-9a-f]{12}$/);
    }
  });

  it("is deterministic: the same code evaluated twice gets the same signature", () => {
    for (const strategy of STRATEGIES) {
      expect(sig(BASE, strategy)).toBe(sig(BASE, strategy));
    }
  });

  it.each(["ast", "ast-deps", "signature"] as const)(
    "%s: whitespace, comments, quote style and semicolons keep the signature",
    (strategy) => {
      expect(sig(REFORMATTED, strategy)).toBe(sig(BASE, strategy));
    },
  );

  it("source: any formatting change changes the signature", () => {
    expect(sig(REFORMATTED, "source")).not.toBe(sig(BASE, "source"));
  });

  it.each(["ast", "ast-deps", "source"] as const)("%s: a logic change changes the signature", (strategy) => {
    expect(sig(LOGIC_CHANGED, strategy)).not.toBe(sig(BASE, strategy));
  });

  it("signature: misses implementation changes, catches API changes", () => {
    expect(sig(LOGIC_CHANGED, "signature")).toBe(sig(BASE, "signature"));
    expect(sig(HELPER_CHANGED, "signature")).toBe(sig(BASE, "signature"));
    expect(sig(PARAM_ADDED, "signature")).not.toBe(sig(BASE, "signature"));
    const withExtraMethod = BASE.replace(
      "\n  retrieve(question) {",
      "\n  rerank(list) { return list; }\n  retrieve(question) {",
    );
    expect(sig(withExtraMethod, "signature")).not.toBe(sig(BASE, "signature"));
  });

  it("ast: renaming a local variable is a change (identifiers are part of the tree)", () => {
    expect(sig(LOCAL_RENAMED, "ast")).not.toBe(sig(BASE, "ast"));
  });

  it("ast misses a change in a helper the method calls; ast-deps catches it", () => {
    expect(sig(HELPER_CHANGED, "ast")).toBe(sig(BASE, "ast"));
    expect(sig(HELPER_CHANGED, "ast-deps")).not.toBe(sig(BASE, "ast-deps"));
  });

  it("two different implementations under the same module name get different signatures", () => {
    const v1 = `class Summarize { forward(text) { return text.slice(0, 100); } }`;
    const v2 = `class Summarize { forward(text) { return text.split(".")[0]; } }`;
    for (const strategy of ["ast", "ast-deps", "source"] as const) {
      expect(sig(v1, strategy)).not.toBe(sig(v2, strategy));
    }
  });

  it("signatures of different strategies never coincide for the same code", () => {
    const values = STRATEGIES.map((strategy) => sig(BASE, strategy));
    expect(new Set(values).size).toBe(STRATEGIES.length);
  });

  it("ignores literal spelling but not literal values or types", () => {
    const a = load(`function f() { return [1.0, 0x10, "a\\u0062", \`t\${1}\`]; }`);
    const b = load(`function f() { return [1, 16, 'ab', \`t\${1}\`]; }`);
    const c = load(`function f() { return [1, 16, "ab", \`t\${2}\`]; }`);
    const d = load(`function f() { return ["1", 16, "ab", \`t\${1}\`]; }`);
    expect(computeCodeSignature(a)).toBe(computeCodeSignature(b));
    expect(computeCodeSignature(c)).not.toBe(computeCodeSignature(b));
    expect(computeCodeSignature(d)).not.toBe(computeCodeSignature(b));
  });

  it.each(["ast", "ast-deps"] as const)("%s: ignores empty statements in a statement list", (strategy) => {
    const plain = `class A { forward(x) { if (x) { x++ } return x } }`;
    const stray = `class A { forward(x) { if (x) { x++ }; return x;; } }`;
    expect(sig(stray, strategy)).toBe(sig(plain, strategy));
    // An empty statement that is a whole body is kept: `if (x);` is not `if (x) {}` rewritten.
    const emptyBody = load(`function f(x) { if (x); return x; }`);
    const blockBody = load(`function f(x) { if (x) {} return x; }`);
    expect(computeCodeSignature(emptyBody)).not.toBe(computeCodeSignature(blockBody));
  });

  it('keeps directives: `"use strict";` differs from the expression `("use strict");`', () => {
    // The functions are built without an outer strict context, so the directive is what decides.
    const directive = new Function(`return function f() { "use strict"; return this === undefined; }`)();
    const expression = new Function(`return function f() { ("use strict"); return this === undefined; }`)();
    expect(directive.call(undefined)).toBe(true);
    expect(expression.call(undefined)).toBe(false);
    expect(computeCodeSignature(directive)).not.toBe(computeCodeSignature(expression));
    // Quote style of a directive is still ignored.
    const single = new Function(`return function f() { 'use strict'; return this === undefined; }`)();
    expect(computeCodeSignature(single)).toBe(computeCodeSignature(directive));
  });

  it("distinguishes regular expressions and bigints by value", () => {
    const a = load(`function f(s) { return /a+/g.test(s) ? 1n : 2n; }`);
    const b = load(`function f(s) { return /a+/i.test(s) ? 1n : 2n; }`);
    const c = load(`function f(s) { return /a+/g.test(s) ? 1n : 3n; }`);
    const hashes = [a, b, c].map((fn) => computeCodeSignature(fn));
    expect(new Set(hashes).size).toBe(3);
  });
});

describe("computeCodeSignature: function and method shapes", () => {
  const SHAPES = `class Shapes {
    static create(a, b) { return new Shapes(a, b); }
    async run(x) { return x; }
    *items() { yield 1; }
    async *stream(prompt) { yield prompt; }
    get label() { return "shapes"; }
    set label(value) { this._label = value; }
    ["computed" + "Name"](x) { return x * 2; }
    [Symbol.iterator]() { return this.items(); }
    #secret(x) { return x + 1; }
    usesSecret(x) { return this.#secret(x); }
    field = (x) => x + 1;
  }`;

  it.each([
    ["run"],
    ["items"],
    ["stream"],
    ["label"],
    ["computedName"],
    ["usesSecret"],
    ["create"],
    ["field"],
  ])("hashes method %s under every strategy", (method) => {
    const Shapes = load(SHAPES);
    for (const strategy of STRATEGIES) {
      const details = computeCodeSignatureDetails(Shapes, { strategy, method });
      expect(details.unavailable).toBeNull();
      expect(details.signature).toMatch(/^[0-9a-f]{12}$/);
    }
  });

  it("hashes symbol-keyed methods", () => {
    const Shapes = load(SHAPES);
    const details = computeCodeSignatureDetails(Shapes, { method: Symbol.iterator });
    expect(details.signature).toMatch(/^[0-9a-f]{12}$/);
    expect(details.methods[0]?.name).toBe("[Symbol.iterator]");
  });

  it("the async, generator and async generator forms are part of the signature", () => {
    const body = `(x) { return x; }`;
    const forms = ["", "async ", "*", "async *"].map((prefix) => load(`class A { ${prefix}m${body} }`));
    const hashes = forms.map((cls) => computeCodeSignature(cls, { method: "m" }));
    expect(new Set(hashes).size).toBe(4);
  });

  it("a getter and a method with the same body differ", () => {
    const a = computeCodeSignature(load(`class A { get m() { return 1; } }`), { method: "m" });
    const b = computeCodeSignature(load(`class A { m() { return 1; } }`), { method: "m" });
    expect(a).not.toBe(b);
  });

  it("hashes plain functions, arrow functions, async arrows, generators and classes", () => {
    const sources = [
      `function answer(q) { return q; }`,
      `(q) => q`,
      `async (q) => { await null; return q; }`,
      `function* gen() { yield 1; }`,
      `async function* agen() { yield 1; }`,
      `class Whole { forward() { return 1; } }`,
    ];
    const hashes = sources.map((source) => computeCodeSignature(load(source)));
    for (const hash of hashes) expect(hash).toMatch(/^[0-9a-f]{12}$/);
    expect(new Set(hashes).size).toBe(sources.length);
  });

  it("hashes methods of object literals, including sloppy-mode ones a class body would reject", () => {
    const strict = load<object>(`{ forward(q) { return q; } }`);
    const sloppy = new Function(`return { forward(q) { with (q) { return length; } } };`)() as object;
    expect(computeCodeSignature(strict, { method: "forward" })).toMatch(/^[0-9a-f]{12}$/);
    expect(computeCodeSignature(sloppy, { method: "forward" })).toMatch(/^[0-9a-f]{12}$/);
  });

  it("a method inherited from a parent class is hashed from the parent's definition", () => {
    const Child = load(`class extends (class Base { forward(q) { return q; } }) { other() {} }`);
    const Base = Object.getPrototypeOf(Child) as Function;
    expect(computeCodeSignature(Child, { method: "forward" })).toBe(
      computeCodeSignature(Base, { method: "forward" }),
    );
  });

  it("the same method read from an instance or from its class gets the same signature", () => {
    const Qa = load<new () => object>(BASE);
    for (const strategy of ["ast", "ast-deps", "source"] as const) {
      expect(computeCodeSignature(new Qa(), { strategy, method: "forward" })).toBe(
        computeCodeSignature(Qa, { strategy, method: "forward" }),
      );
    }
  });
});

describe("computeCodeSignature: ast-deps", () => {
  it("follows this.x() calls transitively, including inherited, private, super and getter references", () => {
    const make = (leaf: string) =>
      load(`class extends (class Base {
        deepest() { return ${leaf}; }
        shared() { return this.deepest(); }
        base() { return 1; }
      }) {
        forward(q) { return this.#step(q) + super.base() + this.prefix; }
        #step(q) { return this.shared() + q; }
        get prefix() { return "p"; }
        unrelated() { return 0; }
      }`);
    const base = computeCodeSignatureDetails(make("1"), { strategy: "ast-deps", method: "forward" });
    const changed = computeCodeSignatureDetails(make("2"), { strategy: "ast-deps", method: "forward" });
    expect(changed.signature).not.toBe(base.signature);
    const names = base.methods.map((m) => m.name);
    expect(names[0]).toBe("forward");
    expect(names).toEqual(
      expect.arrayContaining([
        "#step",
        "get prefix",
        "shared (inherited, level 1)",
        "deepest (inherited, level 1)",
        "base (inherited, level 1)",
      ]),
    );
    expect(names).not.toContain("unrelated");
    expect(base.methods.every((m) => m.hash !== null && /^[0-9a-f]{12}$/.test(m.hash))).toBe(true);
  });

  it("ignores changes to methods forward() does not reach", () => {
    const a = `class A { forward() { return this.used(); } used() { return 1; } unused() { return 1; } }`;
    const b = `class A { forward() { return this.used(); } used() { return 1; } unused() { return 2; } }`;
    expect(sig(a, "ast-deps")).toBe(sig(b, "ast-deps"));
  });

  it("resolves this.x() to the most derived override", () => {
    const parent = `class P { forward() { return this.step(); } step() { return "parent"; } }`;
    const childA = load(`class extends (${parent}) { step() { return "a"; } }`);
    const childB = load(`class extends (${parent}) { step() { return "b"; } }`);
    const a = computeCodeSignature(childA, { strategy: "ast-deps", method: "forward" });
    const b = computeCodeSignature(childB, { strategy: "ast-deps", method: "forward" });
    expect(a).not.toBe(b);
  });

  it("terminates on recursion and cycles", () => {
    const source = `class A { forward(n) { return n ? this.b(n - 1) : 0; } b(n) { return this.forward(n) + this.b(0); } }`;
    const details = computeCodeSignatureDetails(load(source), { strategy: "ast-deps", method: "forward" });
    expect(details.methods.map((m) => m.name)).toEqual(["forward", "b"]);
  });

  it("follows calls in class fields holding arrow functions and in arrow callbacks", () => {
    const make = (n: number) =>
      load(`class A {
        helper = (x) => x + ${n};
        forward(list) { return list.map((x) => this.helper(x)); }
      }`);
    expect(sig(String(make(1)), "ast-deps")).not.toBe(sig(String(make(2)), "ast-deps"));
  });

  it("does not follow this inside a nested function, which has its own this", () => {
    const a = `class A { forward() { return function () { return this.h(); }; } h() { return 1; } }`;
    const b = `class A { forward() { return function () { return this.h(); }; } h() { return 2; } }`;
    expect(sig(a, "ast-deps")).toBe(sig(b, "ast-deps"));
  });

  it("resolves #private references in the class that declares the calling method", () => {
    const make = (baseValue: number, derivedValue: number) =>
      load(`class extends (class Base {
        forward() { return this.#secret(); }
        #secret() { return ${baseValue}; }
      }) {
        #secret() { return ${derivedValue}; }
        other() { return this.#secret(); }
      }`);
    const signature = (cls: Function) =>
      computeCodeSignatureDetails(cls, { strategy: "ast-deps", method: "forward" });
    const base = signature(make(1, 1));
    expect(base.methods.map((m) => m.name)).toEqual(["forward", "#secret (inherited, level 1)"]);
    // The derived class's own #secret is a different private name: forward() never runs it.
    expect(signature(make(1, 2)).signature).toBe(base.signature);
    expect(signature(make(2, 1)).signature).not.toBe(base.signature);
  });

  it("finds references deep inside a long method and ignores `this` in strings and comments", () => {
    const filler = Array.from(
      { length: 80 },
      (_, i) => `const v${i} = "this.notAMethod() ${i}"; // this.alsoNot()`,
    );
    const make = (n: number) =>
      load(`class A {
        forward(x) {
          ${filler.join("\n          ")}
          return [1, 2].map((y) => ({ deep: { deeper: [this.helper(y + x)] } }));
        }
        helper(y) { return y + ${n}; }
        notAMethod() { return ${n}; }
        alsoNot() { return ${n}; }
      }`);
    const details = computeCodeSignatureDetails(make(1), { strategy: "ast-deps", method: "forward" });
    expect(details.methods.map((m) => m.name)).toEqual(["forward", "helper"]);
    expect(computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" })).not.toBe(
      details.signature,
    );
  });

  it("per-method hashes of ast-deps equal each method's own ast signature (batched and single parses agree)", () => {
    const Cls = load(`class A {
      forward(x) { return this.a(x) + this.b(x) + this.c; }
      a(x) { return x + 1; }
      async b(x) { return x * 2; }
      get c() { return 3; }
    }`);
    const details = computeCodeSignatureDetails(Cls, { strategy: "ast-deps", method: "forward" });
    expect(details.methods.map((m) => m.name)).toEqual(["forward", "a", "b", "get c"]);
    const own = ["forward", "a", "b", "c"].map((method) => computeCodeSignature(Cls, { method }));
    expect(details.methods.map((m) => m.hash)).toEqual(own);
  });

  it("falls back to one parse per helper when helpers cannot be parsed together (sloppy-mode code)", () => {
    const make = (n: number) =>
      new Function(`return {
        forward(q) { return this.a(q) + this.b(q); },
        a(q) { with (q) { return length + ${n}; } },
        b(q) { return q.length; },
      };`)() as object;
    const details = computeCodeSignatureDetails(make(1), { strategy: "ast-deps", method: "forward" });
    expect(details.methods.map((m) => m.name)).toEqual(["forward", "a", "b"]);
    expect(details.methods.every((m) => m.hash !== null)).toBe(true);
    expect(computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" })).not.toBe(
      details.signature,
    );
  });

  it("hashes what runs: a method deleted from the prototype is not followed", () => {
    const Qa = load<{ prototype: Record<string, unknown> }>(
      `class Qa { forward() { return this.helper?.() ?? 0; } helper() { return 1; } }`,
    );
    expect(
      computeCodeSignatureDetails(Qa, { strategy: "ast-deps", method: "forward" }).methods.map((m) => m.name),
    ).toEqual(["forward", "helper"]);
    const Fresh = load<{ prototype: Record<string, unknown> }>(
      `class Qa { forward() { return this.helper?.() ?? 0; } helper() { return 1; } }`,
    );
    delete Fresh.prototype.helper;
    expect(
      computeCodeSignatureDetails(Fresh, { strategy: "ast-deps", method: "forward" }).methods.map(
        (m) => m.name,
      ),
    ).toEqual(["forward"]);
  });

  it("reads ES5-style prototypes from property descriptors", () => {
    const make = (n: number) => {
      const Ctor = function Legacy() {} as unknown as { prototype: Record<string, unknown> };
      Ctor.prototype.forward = new Function(`return this.helper() + 1;`);
      Ctor.prototype.helper = new Function(`return ${n};`);
      return Ctor as unknown as Function;
    };
    const a = computeCodeSignature(make(1), { strategy: "ast-deps", method: "forward" });
    const b = computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" });
    expect(a).toMatch(/^[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });
});

describe("computeCodeSignature: wrappers, native and bound functions", () => {
  it("returns null for native, bound and proxied functions without throwing", () => {
    const bound = load<Function>(`function f() { return 1; }`).bind(null);
    const proxy = new Proxy(() => 1, {});
    for (const strategy of [...STRATEGIES, () => "x"] as const) {
      for (const target of [Math.max, bound, proxy]) {
        const details = computeCodeSignatureDetails(target, { strategy });
        if (typeof strategy === "function") continue;
        expect(details.signature).toBeNull();
        expect(details.unavailable).toBe("native");
      }
    }
    expect(computeCodeSignature(Map, { method: "get" })).toBeNull();
    expect(computeCodeSignature(Promise, { method: "then", strategy: "ast-deps" })).toBeNull();
  });

  it("returns null for a revoked proxy and a missing method without throwing", () => {
    const { proxy, revoke } = Proxy.revocable(function target() {}, {});
    revoke();
    expect(computeCodeSignature(proxy)).toBeNull();
    const details = computeCodeSignatureDetails(load(BASE), { method: "missing" });
    expect(details).toMatchObject({ signature: null, unavailable: "not-found" });
  });

  it("a wrapper that links to its original does not change any signature", () => {
    for (const strategy of STRATEGIES) {
      const Qa = load<{ prototype: Record<string, unknown> }>(BASE);
      const before = computeCodeSignature(Qa, { strategy, method: "forward" });
      const original = Qa.prototype.forward as Function;
      const wrapper = function (this: unknown, ...args: unknown[]) {
        return original.apply(this, args);
      };
      Object.defineProperty(wrapper, ORIGINAL_FUNCTION, { value: original });
      Qa.prototype.forward = wrapper;
      expect(computeCodeSignature(Qa, { strategy, method: "forward" })).toBe(before);
    }
  });

  it("a method replaced after the class was defined is hashed from the replacement", () => {
    const Qa = load<{ prototype: Record<string, unknown> }>(BASE);
    const before = computeCodeSignature(Qa, { strategy: "ast-deps", method: "forward" });
    Qa.prototype.retrieve = (question: string) => [question];
    expect(computeCodeSignature(Qa, { strategy: "ast-deps", method: "forward" })).not.toBe(before);
  });
});

describe("computeCodeSignature: custom strategies", () => {
  it("uses a short result as is and hashes a long one", () => {
    const Qa = load(BASE);
    expect(computeCodeSignature(Qa, { method: "forward", strategy: () => "release-42" })).toBe("release-42");
    const long = computeCodeSignature(Qa, { method: "forward", strategy: () => "x".repeat(500) });
    expect(long).toMatch(/^[0-9a-f]{12}$/);
  });

  it("receives the function and its context", () => {
    const Qa = load<Function>(BASE);
    let seen: unknown[] = [];
    computeCodeSignature(Qa, {
      method: "forward",
      moduleName: "qa",
      strategy: (fn, context) => {
        seen = [fn, context.target, context.methodName, context.moduleName, context.source];
        return null;
      },
    });
    expect(seen[0]).toBe((Qa.prototype as Record<string, unknown>).forward);
    expect(seen.slice(1, 4)).toEqual([Qa, "forward", "qa"]);
    expect(String(seen[4])).toMatch(/^async forward\(question\)/);
  });

  it("yields null when the strategy throws or returns nothing useful", () => {
    const Qa = load(BASE);
    const throwing = computeCodeSignatureDetails(Qa, {
      method: "forward",
      strategy: () => {
        throw new Error("boom");
      },
    });
    expect(throwing).toMatchObject({ signature: null, strategy: "custom", unavailable: "custom-strategy" });
    expect(computeCodeSignature(Qa, { method: "forward", strategy: () => "" })).toBeNull();
    expect(computeCodeSignature(Qa, { method: "forward", strategy: () => null })).toBeNull();
  });
});

describe("computeCodeSignature: transpiled code", () => {
  /** Compiles TypeScript to ES2015, which turns `async` methods into `__awaiter` + generator calls. */
  function transpile(source: string): Function {
    const output = ts.transpileModule(`export const Cls = ${source};`, {
      compilerOptions: { target: ts.ScriptTarget.ES2015, module: ts.ModuleKind.CommonJS },
    }).outputText;
    const exports: Record<string, unknown> = {};
    new Function("exports", output)(exports);
    return exports.Cls as Function;
  }

  it("down-levelled async methods get a signature, stable across formatting of the original", () => {
    const a = transpile(BASE);
    const b = transpile(REFORMATTED);
    expect(String((a as { prototype: Record<string, unknown> }).prototype.forward)).toContain("__awaiter");
    for (const strategy of ["ast", "ast-deps"] as const) {
      const hash = computeCodeSignature(a, { strategy, method: "forward" });
      expect(hash).toMatch(/^[0-9a-f]{12}$/);
      expect(computeCodeSignature(b, { strategy, method: "forward" })).toBe(hash);
    }
    // The compiler keeps comments, so the emitted text (and the `source` strategy) still sees them.
    expect(computeCodeSignature(b, { strategy: "source", method: "forward" })).not.toBe(
      computeCodeSignature(a, { strategy: "source", method: "forward" }),
    );
  });

  it("transpiled code hashes differently from the same code run untranspiled", () => {
    const native = load(BASE);
    const downLevelled = transpile(BASE);
    expect(computeCodeSignature(downLevelled, { method: "forward" })).not.toBe(
      computeCodeSignature(native, { method: "forward" }),
    );
  });

  it("still detects logic changes, and ast-deps follows this.x() through __awaiter", () => {
    const base = transpile(BASE);
    expect(computeCodeSignature(transpile(LOGIC_CHANGED), { method: "forward" })).not.toBe(
      computeCodeSignature(base, { method: "forward" }),
    );
    const details = computeCodeSignatureDetails(base, { strategy: "ast-deps", method: "forward" });
    expect(details.methods.map((m) => m.name)).toEqual(["forward", "retrieve"]);
    expect(
      computeCodeSignature(transpile(HELPER_CHANGED), { strategy: "ast-deps", method: "forward" }),
    ).not.toBe(details.signature);
  });

  it("follows this through Babel-style _asyncToGenerator(...).apply(this, arguments)", () => {
    const make = (n: number) =>
      load(`class A {
        forward() { return _asyncToGenerator(function* () { return yield this.helper(); }).apply(this, arguments); }
        helper() { return ${n}; }
      }`);
    expect(computeCodeSignature(make(1), { strategy: "ast-deps", method: "forward" })).not.toBe(
      computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" }),
    );
  });
});

describe("computeCodeSignature: helpers called through .call / .apply", () => {
  it("counts this.h.call(this, …) and this.h.apply(this, …) as calls of the helper under ast-deps", () => {
    for (const call of ["this.h.call(this, q)", "this.h.apply(this, [q])", "this.#h.call(this, q)"]) {
      const name = call.includes("#") ? "#h" : "h";
      const make = (n: number) =>
        load(`class A { forward(q) { return ${call}; } ${name}(q) { return ${n}; } }`);
      const details = computeCodeSignatureDetails(make(1), { strategy: "ast-deps", method: "forward" });
      expect(details.methods.map((m) => m.name)).toEqual(["forward", name]);
      expect(computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" })).not.toBe(
        details.signature,
      );
    }
  });
});

describe("computeCodeSignature: functions held by the instance (class fields, constructor assignments)", () => {
  const FIELD = (body: string) =>
    `class Qa {
      forward = async (q) => { const r = this.retrieve(q); ${body} };
      retrieve(q) { return [q]; }
      helper = (x) => x + 1;
    }`;

  it("signs a field holding an arrow function from the class under every strategy, as on an instance", () => {
    const Qa = load<new () => object>(FIELD("return r;"));
    for (const strategy of STRATEGIES) {
      const fromClass = computeCodeSignatureDetails(Qa, { strategy, method: "forward" });
      expect(fromClass.unavailable).toBeNull();
      expect(fromClass.signature).toMatch(/^[0-9a-f]{12}$/);
      // The instance holds its own copy of the arrow: same code, same signature.
      expect(computeCodeSignatureDetails(new Qa(), { strategy, method: "forward" })).toEqual(fromClass);
    }
  });

  it("tells two field bodies apart and keeps identical ones equal", () => {
    const a = load(FIELD("return r;"));
    const b = load(FIELD("return r.concat(r);"));
    const same = load(FIELD("return r;"));
    for (const strategy of ["ast", "ast-deps", "source"] as const) {
      const signature = (cls: Function) => computeCodeSignature(cls, { strategy, method: "forward" });
      expect(signature(a)).not.toBe(signature(b));
      expect(signature(a)).toBe(signature(same));
    }
  });

  it("follows this.x helpers from a field under ast-deps and counts the field as a method with its arity", () => {
    const make = (n: number) =>
      load(FIELD("return r;").replace("retrieve(q) { return [q]; }", `retrieve(q) { return [q, ${n}]; }`));
    const deps = computeCodeSignatureDetails(make(1), { strategy: "ast-deps", method: "forward" });
    expect(deps.methods.map((m) => m.name)).toEqual(["forward", "retrieve"]);
    expect(deps.signature).not.toBe(
      computeCodeSignature(make(2), { strategy: "ast-deps", method: "forward" }),
    );
    const api = computeCodeSignatureDetails(make(1), { strategy: "signature", method: "forward" });
    expect(api.methods.map((m) => m.name)).toEqual([
      "method forward/1",
      "method helper/1",
      "method retrieve/1",
    ]);
  });

  it("signs a function a constructor assigns, read from the instance", () => {
    const make = (n: number) =>
      load<new () => { run(x: number): number }>(`class F { constructor() { this.run = (x) => x + ${n}; } }`);
    const a = computeCodeSignatureDetails(new (make(1))(), { method: "run" });
    expect(a.unavailable).toBeNull();
    expect(a.signature).not.toBe(computeCodeSignature(new (make(2))(), { method: "run" }));
    expect(computeCodeSignature(new (make(1))(), { strategy: "signature", method: "run" })).toMatch(
      /^[0-9a-f]{12}$/,
    );
    // The class alone does not show it.
    expect(computeCodeSignatureDetails(make(1), { method: "run" }).unavailable).toBe("not-found");
  });

  it("a class field shadows an inherited prototype method of the same name, the most derived field winning", () => {
    const Base = load(`class Base { async forward(q) { return q + "base"; } }`) as new () => object;
    const SubA = load<Function>(`(Base) => class SubA extends Base { forward = async (q) => q + "A"; }`);
    const SubB = load<Function>(
      `(Base) => class SubB extends Base { forward = async (q) => { await null; return q + "B, different body"; }; }`,
    );
    const a = SubA(Base) as Function;
    const b = SubB(Base) as Function;
    for (const strategy of ["ast", "source", "ast-deps"] as const) {
      const base = computeCodeSignature(Base, { strategy, method: "forward" });
      const sa = computeCodeSignatureDetails(a, { strategy, method: "forward" });
      const sb = computeCodeSignatureDetails(b, { strategy, method: "forward" });
      expect(sa.unavailable).toBeNull();
      expect(new Set([base, sa.signature, sb.signature]).size).toBe(3);
      // The class and its instances agree: an instance holds the field as an own property.
      expect(computeCodeSignature(new (a as new () => object)(), { strategy, method: "forward" })).toBe(
        sa.signature,
      );
    }
    // A field declared by an ancestor shadows a method a subclass defines on its prototype.
    const FieldBase = load<new () => object>(`class FieldBase { forward = (q) => q + "field"; }`);
    const MethodSub = load<Function>(
      `(B) => class MethodSub extends B { forward(q) { return q + "method"; } }`,
    )(FieldBase) as Function;
    const field = computeCodeSignature(FieldBase, { method: "forward" });
    expect(computeCodeSignature(MethodSub, { method: "forward" })).toBe(field);
    expect(computeCodeSignature(new (MethodSub as new () => object)(), { method: "forward" })).toBe(field);
    // ...and a more derived field shadows the ancestor's.
    const FieldSub = load<Function>(`(B) => class FieldSub extends B { forward = (q) => q + "sub"; }`)(
      MethodSub,
    ) as Function;
    const sub = computeCodeSignature(FieldSub, { method: "forward" });
    expect(sub).not.toBe(field);
    expect(computeCodeSignature(new (FieldSub as new () => object)(), { method: "forward" })).toBe(sub);
  });
});
