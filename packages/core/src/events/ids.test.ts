import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { createId } from "./ids";

describe("createId", () => {
  it("returns 12 URL-safe characters by default", () => {
    const id = createId();
    expect(id).toHaveLength(12);
    expect(id).toMatch(/^[A-Za-z0-9_-]{12}$/);
  });

  it("honours the requested size, including sizes larger than what is left in the pool", () => {
    for (const size of [1, 8, 21, 64, 1000, 1024]) {
      const id = createId(size);
      expect(id).toHaveLength(size);
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    }
  });

  it("produces no duplicates over 100k ids", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(createId());
    expect(seen.size).toBe(100_000);
  });

  it("uses all 64 characters of the alphabet with roughly uniform frequency", () => {
    const counts = new Map<string, number>();
    const total = 64 * 2000;
    const id = createId(1024);
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    for (let i = 0; i < total / 16; i++) {
      for (const ch of createId(16)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
    expect(counts.size).toBe(64);
    // Expected 2000 per character; a biased mapping (e.g. modulo 62) would skew some characters far beyond this.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(1600);
      expect(n).toBeLessThan(2400);
    }
  });

  it("rejects sizes that are not integers from 1 to 1024", () => {
    for (const size of [0, -1, 1.5, Number.NaN, 1025]) {
      expect(() => createId(size)).toThrow(ConfigurationError);
    }
  });
});
