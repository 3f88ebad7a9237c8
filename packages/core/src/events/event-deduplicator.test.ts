import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { EventDeduplicator } from "./event-deduplicator";

describe("EventDeduplicator", () => {
  it("runs the handler once per event id and counts the skipped duplicates", async () => {
    const dedupe = new EventDeduplicator();
    const handled: string[] = [];
    for (const id of ["a", "b", "a", "c", "b", "a"]) {
      await dedupe.handleOnce(id, () => handled.push(id));
    }
    expect(handled).toEqual(["a", "b", "c"]);
    expect(dedupe.getStats()).toEqual({ size: 3, handled: 3, duplicates: 3, evicted: 0 });
  });

  it("remembers an id only after its handler succeeded, so a failed event is handled again", async () => {
    const dedupe = new EventDeduplicator();
    await expect(
      dedupe.handleOnce("x", () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(dedupe.has("x")).toBe(false);
    expect(await dedupe.handleOnce("x", async () => undefined)).toBe(true);
    expect(await dedupe.handleOnce("x", () => undefined)).toBe(false);
  });

  it("rejects options and a clock it could not use, naming them", () => {
    expect(() => new EventDeduplicator({ maxId: 5 } as never)).toThrow(
      /maxId: unknown option; did you mean `maxIds`/,
    );
    expect(() => new EventDeduplicator({}, { nw: () => 0 } as never)).toThrow(
      /^invalid EventDeduplicator options: clock: expected an object with now\(\)/,
    );
  });

  it("keeps at most maxIds ids, forgetting the oldest first", async () => {
    const dedupe = new EventDeduplicator({ maxIds: 3 });
    for (const id of ["1", "2", "3", "4"]) dedupe.remember(id);
    expect(dedupe.has("1")).toBe(false);
    expect(["2", "3", "4"].every((id) => dedupe.has(id))).toBe(true);
    expect(dedupe.getStats()).toMatchObject({ size: 3, evicted: 1 });
    // Memory stays bounded over a long run.
    for (let i = 0; i < 10_000; i++) await dedupe.handleOnce(`id-${i}`, () => undefined);
    expect(dedupe.getStats().size).toBe(3);
  });

  it("forgets ids older than maxAgeMs", () => {
    let now = 1_000;
    const dedupe = new EventDeduplicator({ maxAgeMs: 100 }, { now: () => now });
    dedupe.remember("old");
    now += 60;
    dedupe.remember("young");
    now += 50;
    expect(dedupe.has("old")).toBe(false);
    expect(dedupe.has("young")).toBe(true);
    expect(dedupe.getStats()).toMatchObject({ size: 1, evicted: 1 });
  });

  it("lets a concurrent call for the same id wait for the first one", async () => {
    const dedupe = new EventDeduplicator();
    let calls = 0;
    let release: () => void = () => undefined;
    const first = dedupe.handleOnce("same", async () => {
      calls += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    const second = dedupe.handleOnce("same", () => {
      calls += 1;
    });
    await Promise.resolve();
    release();
    expect(await first).toBe(true);
    expect(await second).toBe(false);
    expect(calls).toBe(1);
  });

  it("rejects invalid options with the option's path", () => {
    const cases: [unknown, string][] = [
      [{ maxIds: 0 }, "maxIds"],
      [{ maxIds: 1.5 }, "maxIds"],
      [{ maxAgeMs: -1 }, "maxAgeMs"],
      [{ maxId: 10 }, "maxId"],
    ];
    for (const [options, path] of cases) {
      let error: unknown;
      try {
        new EventDeduplicator(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, path).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).issues[0]?.path).toBe(path);
    }
  });
});
