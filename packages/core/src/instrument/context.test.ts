import { describe, expect, it } from "vitest";
import { createSpan, getCurrentSpan, runInSpan, type Span, withSpan } from "./context";

describe("spans", () => {
  it("starts an execution at the root and inherits it below", () => {
    const root = createSpan(undefined, "Root", "forward", null, undefined);
    expect(root.parentSpanId).toBeNull();
    expect(root.depth).toBe(0);
    expect(root.executionId).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(root.spanId).not.toBe(root.executionId);
    const child = createSpan(root, "Child", "forward", "step", { k: "v" });
    expect(child.executionId).toBe(root.executionId);
    expect(child.parentSpanId).toBe(root.spanId);
    expect(child.depth).toBe(1);
    expect(child.tags).toEqual({ k: "v" });
    expect([child.moduleVersion, child.codeSignature, child.gitCommit]).toEqual([null, null, null]);
  });

  it("runInSpan passes this and arguments and returns the result", () => {
    const span = createSpan(undefined, "M", "forward", null, undefined);
    const receiver = { base: 10 };
    const result = runInSpan(
      span,
      function (this: { base: number }, a: number, b: number) {
        expect(getCurrentSpan()).toBe(span);
        return this.base + a + b;
      } as (...args: never[]) => number,
      receiver,
      [1, 2],
    );
    expect(result).toBe(13);
    expect(getCurrentSpan()).toBeUndefined();
  });

  it("propagates across awaits, timers, immediates and Promise.all", async () => {
    const span = createSpan(undefined, "M", "forward", null, undefined);
    const seen: (Span | undefined)[] = [];
    await withSpan(span, async () => {
      await Promise.resolve();
      seen.push(getCurrentSpan());
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          seen.push(getCurrentSpan());
          resolve();
        }, 1),
      );
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          seen.push(getCurrentSpan());
          resolve();
        }),
      );
      const all = await Promise.all([1, 2, 3].map(async () => getCurrentSpan()));
      seen.push(...all);
    });
    expect(seen).toHaveLength(6);
    for (const current of seen) expect(current).toBe(span);
    expect(getCurrentSpan()).toBeUndefined();
  });

  it("keeps concurrent spans apart", async () => {
    const a = createSpan(undefined, "A", "forward", null, undefined);
    const b = createSpan(undefined, "B", "forward", null, undefined);
    const read = async (delay: number) => {
      await new Promise((r) => setTimeout(r, delay));
      return getCurrentSpan()?.moduleName;
    };
    const results = await Promise.all([withSpan(a, () => read(3)), withSpan(b, () => read(1))]);
    expect(results).toEqual(["A", "B"]);
  });
});
