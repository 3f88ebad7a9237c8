import { describe, expect, it } from "vitest";
import { EventIdSet } from "./event-id-set";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/** Deterministic 12-character ids from the runtime's alphabet. */
function ids(count: number, seed: number): string[] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 26;
  };
  return Array.from({ length: count }, () => Array.from({ length: 12 }, () => ALPHABET[next()]).join(""));
}

describe("EventIdSet", () => {
  it("tells every id it was given before, through growth, exactly like a Set", () => {
    const set = new EventIdSet();
    const reference = new Set<string>();
    const list = [...ids(20_000, 1), ...ids(5_000, 1), "AAAAAAAAAAAA", "AAAAAAAAAAAA", "------------"];
    for (const id of list) {
      expect(set.add(id)).toBe(!reference.has(id));
      reference.add(id);
    }
    expect(set.size).toBe(reference.size);
    for (const id of ids(20_000, 1)) expect(set.add(id)).toBe(false);
  });

  it("keeps ids of another shape apart from packed ones", () => {
    const set = new EventIdSet();
    expect(set.add("short")).toBe(true);
    expect(set.add("short")).toBe(false);
    expect(set.add("AAAAAAAAAAA.")).toBe(true);
    expect(set.add("AAAAAAAAAAAA")).toBe(true);
    expect(set.add("AAAAAAAAAAA.")).toBe(false);
    expect(set.add("AAAAAAAAAAAé")).toBe(true);
    expect(set.add("")).toBe(true);
    expect(set.add("")).toBe(false);
    expect(set.size).toBe(5);
  });

  it("tells ids that differ in one character apart", () => {
    const set = new EventIdSet();
    for (let i = 0; i < 12; i++) {
      for (const char of ALPHABET)
        expect(set.add(`${"A".repeat(i)}${char}${"A".repeat(11 - i)}`)).toBe(i === 0 || char !== "A");
    }
    expect(set.size).toBe(1 + 12 * 63);
  });
});
