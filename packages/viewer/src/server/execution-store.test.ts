import { describe, expect, it } from "vitest";
import { ExecutionStore } from "./execution-store";

const line = (size: number) => "x".repeat(size);

describe("ExecutionStore", () => {
  it("never holds more than maxExecutions, even when every event of the new executions is dropped", () => {
    const store = new ExecutionStore({ maxExecutions: 10, maxBytes: 100_000, maxEventsPerExecution: 100 });
    for (let i = 0; i < 3; i++) expect(store.add(`kept-${i}`, line(10), "start").stored).toBe(true);
    // Each is over an execution's share of maxBytes (a quarter, twice that for start events).
    for (let i = 0; i < 5_000; i++) expect(store.add(`big-${i}`, line(60_000), "start").stored).toBe(false);
    expect(store.stats).toMatchObject({
      executions: 3,
      events: 3,
      droppedEvents: 5_000,
      evictedExecutions: 0,
    });
    // Dropped from executions the page never sees: not in the status message, which stays small.
    expect(store.droppedByExecution()).toEqual({});
    // The next small event adds one execution and evicts none of those held.
    expect(store.add("small", line(10), "start")).toEqual({ stored: true, evicted: [] });
    expect(store.stats.executions).toBe(4);
  });

  it("counts an execution's dropped events once one of its events is kept, and bounds what it remembers", () => {
    const store = new ExecutionStore({ maxExecutions: 2, maxBytes: 1_000, maxEventsPerExecution: 100 });
    expect(store.add("a", line(600), "start").stored).toBe(false);
    expect(store.add("a", line(10), "end").stored).toBe(true);
    expect(store.droppedByExecution()).toEqual({ a: 1 });
    // Only the last maxExecutions executions not held are remembered.
    for (const id of ["b", "c", "d"]) store.add(id, line(600), "start");
    for (const id of ["b", "c", "d"]) store.add(id, line(10), "end");
    expect(store.droppedByExecution()).toEqual({ c: 1, d: 1 });
    expect(store.stats).toMatchObject({ executions: 2, droppedEvents: 4 });
  });

  it("evicts the oldest executions past maxExecutions, one per new execution", () => {
    const store = new ExecutionStore({ maxExecutions: 2, maxBytes: 1_000, maxEventsPerExecution: 100 });
    store.add("a", line(10), "start");
    store.add("b", line(10), "start");
    expect(store.add("c", line(10), "start").evicted).toEqual(["a"]);
    expect(store.stats).toMatchObject({ executions: 2, events: 2, evictedExecutions: 1 });
  });
});

describe("ExecutionStore.droppedByExecution", () => {
  it("keys executions named like Object's members as own properties", () => {
    const store = new ExecutionStore({ maxExecutions: 10, maxBytes: 100_000, maxEventsPerExecution: 1 });
    for (const id of ["__proto__", "constructor"]) {
      store.add(id, line(10), "token");
      store.add(id, line(10), "token");
    }
    const dropped = store.droppedByExecution();
    expect(Object.keys(dropped)).toEqual(["__proto__", "constructor"]);
    expect(JSON.parse(JSON.stringify(dropped))).toEqual(JSON.parse('{"__proto__": 1, "constructor": 1}'));
  });
});
