import { describe, expect, it } from "vitest";
import { ProcessHold, sendingForPipeline } from "./process-hold";

function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

describe("ProcessHold", () => {
  it("holds the process with one ref'd timer while work is in flight, and none once it settles", async () => {
    const hold = new ProcessHold();
    const before = timers();
    let finish: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const first = hold.run(() => gate);
    const second = hold.run(() => gate.then(() => "second"));
    expect(hold.holding).toBe(true);
    expect(timers()).toBe(before + 1);
    finish();
    await expect(second).resolves.toBe("second");
    await first;
    expect(hold.holding).toBe(false);
    expect(timers()).toBe(before);
  });

  it("releases the process when the work rejects, and passes the rejection on", async () => {
    const hold = new ProcessHold();
    const before = timers();
    await expect(hold.run(() => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(hold.holding).toBe(false);
    expect(timers()).toBe(before);
  });

  it("does not hold the process for a send the delivery pipeline makes (its own deadlines do)", async () => {
    const hold = new ProcessHold();
    const before = timers();
    let finish: () => void = () => {};
    const sent = sendingForPipeline(() =>
      hold.run(
        () =>
          new Promise<void>((resolve) => {
            finish = resolve;
          }),
      ),
    );
    expect(hold.holding).toBe(false);
    expect(timers()).toBe(before);
    // Outside the pipeline's call the same sink holds again.
    const direct = hold.run(() => sent);
    expect(hold.holding).toBe(true);
    finish();
    await direct;
    expect(hold.holding).toBe(false);
  });
});
