import { afterEach, describe, expect, it } from "vitest";
import type { StreamllEvent } from "../events/event-schema";
import { instrument } from "./instrument";
import { shutdown } from "./runtime";
import { collect, setup, warnings } from "./runtime-test-support";

// An instrumented function returns exactly what the original returns: the same promise (subclass, handled or
// not), the same thenable, settling on the same microtask.

const types = (events: StreamllEvent[]) => events.map((e) => e.event_type);
const macrotask = () => new Promise((resolve) => setTimeout(resolve, 10));

/** Unhandled rejections reported while `body` runs (and one macrotask after). */
async function unhandledDuring(body: () => unknown): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", listener);
  try {
    body();
    await macrotask();
    await macrotask();
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}

afterEach(async () => {
  await shutdown(2_000);
  warnings.length = 0;
});

describe("instrumented calls return the original promise", () => {
  it("returns the very promise the function returned", async () => {
    const sink = setup();
    const promise = Promise.resolve(7);
    const get = instrument(() => promise);
    expect(get()).toBe(promise);
    await promise;
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    expect(events[1]?.data.outputs).toBe(7);
  });

  it("adds no unhandled rejection for a promise the function already handled (fire and forget)", async () => {
    const sink = setup();
    const handled: string[] = [];
    class Cache {
      forward() {
        const p = Promise.reject(new Error("cache warmup failed"));
        p.catch((e: Error) => handled.push(e.message));
        return p;
      }
    }
    instrument(Cache);
    const unhandled = await unhandledDuring(() => {
      new Cache().forward();
    });
    expect(unhandled).toEqual([]);
    expect(handled).toEqual(["cache warmup failed"]);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "error"]);
    expect(events[1]?.data.error_message).toBe("cache warmup failed");
  });

  it("rejects the caller's promise with the original error, recorded once, with no extra unhandled rejection", async () => {
    const sink = setup();
    const original = new RangeError("nope");
    const fail = instrument(async () => {
      await null;
      throw original;
    });
    let caught: unknown;
    const unhandled = await unhandledDuring(() =>
      fail().catch((error: unknown) => {
        caught = error;
      }),
    );
    expect(unhandled).toEqual([]);
    expect(caught).toBe(original);
    expect(types(await collect(sink))).toEqual(["start", "error"]);
  });

  it("returns a Promise subclass as the same object, with its methods", async () => {
    const sink = setup();
    class Cancellable<T> extends Promise<T> {
      cancelled = false;
      cancel(): void {
        this.cancelled = true;
      }
    }
    const p = new Cancellable<number>((resolve) => setTimeout(resolve, 5, 1));
    const api = instrument({ forward: () => p });
    const got = api.forward();
    expect(got).toBe(p);
    got.cancel();
    expect(p.cancelled).toBe(true);
    await expect(got).resolves.toBe(1);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    expect(events[1]?.data.outputs).toBe(1);
  });

  it("settles the caller's continuations in the same order as uninstrumented promises", async () => {
    setup();
    async function work() {
      return 1;
    }
    const wrapped = instrument(work);
    const order: string[] = [];
    work().then(() => order.push("A:original"));
    wrapped().then(() => order.push("B:instrumented"));
    work().then(() => order.push("C:original"));
    await macrotask();
    expect(order).toEqual(["A:original", "B:instrumented", "C:original"]);

    // The same number of microtask ticks until the continuation runs.
    async function ticksUntil(fn: () => Promise<unknown>): Promise<number> {
      let ticks = 0;
      let done = false;
      fn().then(() => {
        done = true;
      });
      while (!done && ticks < 50) {
        await null;
        ticks++;
      }
      return ticks;
    }
    expect(await ticksUntil(wrapped)).toBe(await ticksUntil(work));
  });

  it("ends an async call that resolves to an async generator, returning the generator untouched", async () => {
    const sink = setup();
    async function* source() {
      yield "x";
    }
    const generator = source();
    const open = instrument(async function open() {
      return generator;
    });
    const got = await open();
    expect(got).toBe(generator);
    const chunks: string[] = [];
    for await (const chunk of got) chunks.push(chunk);
    expect(chunks).toEqual(["x"]);
    const events = await collect(sink);
    // The resolved value cannot be swapped for an instrumented stream: the call ends when the promise does.
    expect(types(events)).toEqual(["start", "end"]);
    expect(typeof events[1]?.data.duration_ms).toBe("number");
  });
});

describe("instrumented calls returning a thenable that is not a promise", () => {
  it("returns the thenable itself and never calls its then (a lazy query stays unrun)", async () => {
    const sink = setup();
    let executed = 0;
    class Query {
      where(): this {
        return this;
      }
      // biome-ignore lint/suspicious/noThenProperty: a query builder is thenable, which is the point here
      then<R>(resolve: (rows: string[]) => R, reject?: (error: unknown) => R): Promise<R> {
        executed++;
        return Promise.resolve(["row"]).then(resolve, reject);
      }
    }
    const repo = instrument({ forward: () => new Query() });
    const query = repo.forward();
    expect(query).toBeInstanceOf(Query);
    expect(query.where()).toBe(query);
    await macrotask();
    expect(executed).toBe(0);
    const events = await collect(sink);
    expect(types(events)).toEqual(["start", "end"]);
    expect(events[1]?.data.outputs).toEqual({ $type: "Query" });
    expect(typeof events[1]?.data.duration_ms).toBe("number");
    // Awaited by the caller, it runs exactly once.
    await expect(query).resolves.toEqual(["row"]);
    expect(executed).toBe(1);
  });

  it("hands back a thenable whose then getter throws, untouched", async () => {
    setup();
    // biome-ignore lint/suspicious/noThenProperty: a thenable whose then getter throws is the point here
    const hostile = Object.defineProperty({}, "then", {
      get() {
        throw new Error("then getter");
      },
    });
    const get = instrument(() => hostile);
    expect(get()).toBe(hostile);
  });
});
