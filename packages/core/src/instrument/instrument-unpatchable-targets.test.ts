import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { instrument, isInstrumented } from "./instrument";
import { shutdown } from "./runtime";
import { collect, setup, warnings } from "./runtime-test-support";

// Targets instrument() cannot patch or read (frozen classes, non-configurable methods, revoked or throwing
// proxies) are a ConfigurationError saying why, never a raw TypeError; a class whose `name` is unreadable is
// instrumented all the same.

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

describe("classes whose methods cannot be replaced", () => {
  it("rejects a frozen class with a ConfigurationError that says what to do", () => {
    setup();
    class Frozen {
      forward() {
        return 2;
      }
    }
    const original = Frozen.prototype.forward;
    Object.freeze(Frozen.prototype);
    const error = thrownBy(() => instrument(Frozen));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe("CONFIGURATION_INVALID");
    expect((error as Error).message).toContain(
      "cannot instrument forward of Frozen: the property is not configurable (frozen class); instrument an instance or a subclass",
    );
    expect((error as ConfigurationError).issues[0]?.path).toBe("target");
    expect(Frozen.prototype.forward).toBe(original);
  });

  it("rejects a read-only, non-configurable method of an otherwise open class", () => {
    setup();
    class Locked {
      forward() {
        return 1;
      }
    }
    Object.defineProperty(Locked.prototype, "forward", { writable: false, configurable: false });
    const error = thrownBy(() => instrument(Locked));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain(
      "cannot instrument forward of Locked: the property is not configurable;",
    );
  });

  it("instruments a non-configurable method that is still writable", async () => {
    const sink = setup();
    class Pinned {
      forward() {
        return 3;
      }
    }
    Object.defineProperty(Pinned.prototype, "forward", { writable: true, configurable: false });
    instrument(Pinned);
    expect(new Pinned().forward()).toBe(3);
    expect((await collect(sink)).map((e) => e.event_type)).toEqual(["start", "end"]);
  });

  it("rejects a frozen subclass that inherits the method, leaving the base class alone", () => {
    setup();
    class Base {
      forward() {
        return 1;
      }
    }
    class Sub extends Base {}
    Object.freeze(Sub.prototype);
    const error = thrownBy(() => instrument(Sub));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain(
      "cannot instrument forward of Sub: the prototype is not extensible (frozen class)",
    );
    expect(isInstrumented(Base.prototype.forward)).toBe(false);
  });

  it("changes nothing when one of several methods cannot be replaced", () => {
    setup();
    class Mixed {
      open() {
        return 1;
      }
      locked() {
        return 2;
      }
    }
    Object.defineProperty(Mixed.prototype, "locked", { writable: false, configurable: false });
    expect(() => instrument(Mixed, { methods: ["open", "locked"] })).toThrow(ConfigurationError);
    expect(isInstrumented(Mixed.prototype.open)).toBe(false);
  });

  it("instruments an instance of a frozen class, as the error suggests", async () => {
    const sink = setup();
    class Frozen {
      forward() {
        return 2;
      }
    }
    Object.freeze(Frozen.prototype);
    const instance = instrument(new Frozen());
    expect(instance.forward()).toBe(2);
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "end"]);
    expect(events[0]?.module_name).toBe("Frozen");
  });
});

describe("targets that cannot be read", () => {
  it("rejects a revoked proxy with a ConfigurationError", () => {
    setup();
    const object = Proxy.revocable({ forward() {} }, {});
    object.revoke();
    const fn = Proxy.revocable(() => 1, {});
    fn.revoke();
    for (const target of [object.proxy, fn.proxy]) {
      for (const call of [() => instrument(target), () => instrument(target, { name: "x" })]) {
        const error = thrownBy(call);
        expect(error).toBeInstanceOf(ConfigurationError);
        expect((error as ConfigurationError).code).toBe("CONFIGURATION_INVALID");
        expect((error as Error).message).toContain("revoked proxy");
        expect((error as ConfigurationError).issues[0]?.path).toBe("target");
      }
    }
  });

  it("rejects a proxy whose traps throw, keeping the trap's error as cause only", () => {
    setup();
    const trapError = new Error("trap says secret-value");
    const hostile = new Proxy(
      { forward() {} },
      {
        get() {
          throw trapError;
        },
        getOwnPropertyDescriptor() {
          throw trapError;
        },
        ownKeys() {
          throw trapError;
        },
        getPrototypeOf() {
          throw trapError;
        },
      },
    );
    const error = thrownBy(() => instrument(hostile));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).not.toContain("secret-value");
    expect((error as Error).cause).toBe(trapError);
  });
});

describe("classes whose name cannot be read", () => {
  it("instruments a class whose name getter throws, as anonymous", async () => {
    const sink = setup();
    class Named {
      forward() {
        return 1;
      }
    }
    Object.defineProperty(Named, "name", {
      get() {
        throw new Error("name");
      },
    });
    instrument(Named);
    expect(new Named().forward()).toBe(1);
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "end"]);
    expect(events[0]?.module_name).toBe("anonymous");
  });

  it("never records a non-string name (a static name() method)", async () => {
    const sink = setup();
    class Odd {
      static name() {
        return "not a string property";
      }
      forward() {
        return 1;
      }
    }
    instrument(Odd);
    expect(new Odd().forward()).toBe(1);
    const events = await collect(sink);
    expect(events.map((e) => e.event_type)).toEqual(["start", "end"]);
    expect(events[0]?.module_name).toBe("anonymous");
  });
});
