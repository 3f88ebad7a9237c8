import { describe, expect, it } from "vitest";
import { abortable } from "./abortable";

const timeout = () => new Error("timed out");

describe("abortable", () => {
  it("settles like the promise when the signal never aborts", async () => {
    const controller = new AbortController();
    await expect(abortable(Promise.resolve(7), controller.signal, timeout)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error("boom")), controller.signal, timeout)).rejects.toThrow(
      "boom",
    );
  });

  it("rejects with the reason as soon as the signal aborts", async () => {
    const controller = new AbortController();
    const pending = abortable(new Promise<number>(() => undefined), controller.signal, timeout);
    controller.abort();
    await expect(pending).rejects.toThrow("timed out");
  });

  it("rejects at once when the signal is already aborted, without an unhandled rejection", async () => {
    const controller = new AbortController();
    controller.abort();
    const late = Promise.reject(new Error("late"));
    await expect(abortable(late, controller.signal, timeout)).rejects.toThrow("timed out");
  });

  it("removes its abort listener once the promise settles", async () => {
    const controller = new AbortController();
    let listeners = 0;
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners += 1;
      add(...args);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners -= 1;
      remove(...args);
    }) as typeof signal.removeEventListener;
    for (let i = 0; i < 10; i += 1) await abortable(Promise.resolve(i), signal, timeout);
    expect(listeners).toBe(0);
  });

  it("returns the promise itself when there is no signal", () => {
    const promise = Promise.resolve(1);
    expect(abortable(promise, undefined, timeout)).toBe(promise);
  });
});
