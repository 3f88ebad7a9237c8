import { afterEach, describe, expect, it } from "vitest";
import { instrument, isInstrumented } from "./instrument";
import { shutdown } from "./runtime";
import { collect, setup, warnings } from "./runtime-test-support";

// A class instance that cannot take own properties is instrumented through a Proxy of it. Private fields,
// brand checks and internal slots live on the instance alone, so whatever is reached through the Proxy must run
// on the instance: called with the Proxy as `this`, `this.#x` throws.

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

class Classifier {
  #threshold = 0.5;
  #calls = 0;

  forward(x: number): string {
    this.#calls += 1;
    return x > this.#threshold ? "yes" : "no";
  }

  async streamingCheck(x: number): Promise<string> {
    await Promise.resolve();
    return x > this.#threshold ? "yes" : "no";
  }

  async *streamingForward(): AsyncGenerator<string> {
    yield `threshold ${this.#threshold}`;
  }

  chain(): this {
    this.#calls += 1;
    return this;
  }

  get calls(): number {
    return this.#calls;
  }

  get threshold(): number {
    return this.#threshold;
  }

  set threshold(value: number) {
    this.#threshold = value;
  }
}

const locks = [
  ["sealed", <T extends object>(o: T): T => Object.seal(o)],
  ["frozen", <T extends object>(o: T): T => Object.freeze(o)],
  ["non-extensible", <T extends object>(o: T): T => Object.preventExtensions(o)],
] as const;

describe.each(locks)("a %s class instance with private fields", (_how, lock) => {
  it("runs sync and async instrumented methods on the instance and records them", async () => {
    const sink = setup();
    const obj = lock(new Classifier());
    const inst = instrument(obj, { methods: ["forward", "streamingCheck"] });
    expect(inst.forward(0.9)).toBe("yes");
    expect(inst.forward(0.1)).toBe("no");
    await expect(inst.streamingCheck(0.9)).resolves.toBe("yes");
    expect(isInstrumented(inst)).toBe(true);
    expect(instrument(obj, { methods: ["forward", "streamingCheck"] })).toBe(inst);
    // The instance itself is left as it was.
    expect(isInstrumented(obj.forward)).toBe(false);
    const events = await collect(sink);
    expect(events.map((e) => [e.method_name, e.event_type])).toEqual([
      ["forward", "start"],
      ["forward", "end"],
      ["forward", "start"],
      ["forward", "end"],
      ["streamingCheck", "start"],
      ["streamingCheck", "end"],
    ]);
    expect(events.every((e) => e.module_name === "Classifier")).toBe(true);
    expect(events[1]?.data.outputs).toBe("yes");
    expect(events[5]?.data.outputs).toBe("yes");
    expect(warnings).toEqual([]);
  });

  it("streams an instrumented async generator method that reads a private field", async () => {
    const sink = setup();
    const inst = instrument(lock(new Classifier()), { methods: ["streamingForward"] });
    const chunks: string[] = [];
    for await (const chunk of inst.streamingForward()) chunks.push(chunk);
    expect(chunks).toEqual(["threshold 0.5"]);
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "token", "end"]);
    expect(events[2]?.data).toMatchObject({ token_count: 1, outputs: { output: "threshold 0.5" } });
  });

  it("returns the object instrument() returned from a method that returns `this`, so chains stay recorded", async () => {
    const sink = setup();
    const obj = lock(new Classifier());
    const inst = instrument(obj, { methods: ["chain"] });
    expect(inst.chain()).toBe(inst);
    expect(inst.chain().chain()).toBe(inst);
    expect(obj.calls).toBe(3);
    const events = await collect(sink);
    expect(events.filter((e) => e.event_type === "end")).toHaveLength(3);
  });

  it("reads and writes accessors over private fields through the returned object", () => {
    setup();
    const obj = lock(new Classifier());
    const inst = instrument(obj);
    inst.forward(1);
    expect(inst.calls).toBe(1);
    expect(obj.calls).toBe(1);
    expect(inst.threshold).toBe(0.5);
    inst.threshold = 2;
    expect(obj.threshold).toBe(2);
    expect(inst.forward(1)).toBe("no");
    expect(inst).toBeInstanceOf(Classifier);
  });

  it("keeps an instrumented method called on another object running on that object", () => {
    setup();
    const inst = instrument(lock(new Classifier()));
    const other = new Classifier();
    other.threshold = 2;
    expect(inst.forward.call(other, 1)).toBe("no");
  });
});

describe("setters through the returned object", () => {
  it("writes a private field of a sealed instance through a setter and a field through the Proxy", () => {
    setup();
    class Counter {
      #limit = 1;
      count = 0;
      forward(): boolean {
        this.count += 1;
        return this.count <= this.#limit;
      }
      set limit(value: number) {
        this.#limit = value;
      }
    }
    const obj = Object.seal(new Counter());
    const inst = instrument(obj);
    inst.limit = 3;
    expect([inst.forward(), inst.forward(), inst.forward(), inst.forward()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    inst.count = 0;
    expect(obj.count).toBe(0);
    expect(inst.forward()).toBe(true);
    expect(obj.count).toBe(1);
  });

  it("uses built-in internal slots on the instance (a sealed Map subclass)", () => {
    setup();
    class Cache extends Map<string, number> {
      forward(key: string): number | undefined {
        return this.get(key);
      }
    }
    const obj = Object.seal(new Cache([["a", 1]]));
    const inst = instrument(obj);
    expect(inst.forward("a")).toBe(1);
  });
});

describe("a class instance whose method is an own, locked property", () => {
  it("runs the method on the instance and reads live state from it", async () => {
    const sink = setup();
    class Tagged {
      #prefix = "p";
      readonly forward: (s: string) => string;
      suffix = "!";
      constructor() {
        const self = this;
        this.forward = function (this: Tagged, s: string): string {
          return `${this.#prefix}:${s}${this === self ? this.suffix : "?"}`;
        };
      }
    }
    const obj = new Tagged();
    Object.defineProperty(obj, "forward", { writable: false, configurable: false });
    Object.preventExtensions(obj);
    const inst = instrument(obj);
    expect(inst.forward("x")).toBe("p:x!");
    inst.suffix = "?!";
    expect(obj.suffix).toBe("?!");
    expect(inst.forward("y")).toBe("p:y?!");
    expect((await collect(sink)).map((e) => e.event_type)).toEqual(["start", "end", "start", "end"]);
  });
});
