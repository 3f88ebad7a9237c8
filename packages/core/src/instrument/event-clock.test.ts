import { describe, expect, it } from "vitest";
import { createEventClock, REANCHOR_MS } from "./event-clock";

/** Clocks the test moves by hand; counts the wall-clock reads. */
function manualClocks(wallMs: number) {
  const clocks = { wall: wallMs, monotonic: 0, wallReads: 0 };
  const sources = {
    wall: () => {
      clocks.wallReads += 1;
      return clocks.wall;
    },
    monotonic: () => clocks.monotonic,
  };
  const advance = (ms: number) => {
    clocks.wall += ms;
    clocks.monotonic += ms;
  };
  return { clocks, sources, advance };
}

const START = Date.parse("2026-12-06T10:00:00.000Z");

describe("createEventClock", () => {
  it("stamps a reading with the wall-clock time it was taken at", () => {
    const { sources, advance } = manualClocks(START);
    const clock = createEventClock(sources);
    const first = clock.now();
    advance(12.7);
    const second = clock.now();
    expect(clock.timestampAt(first)).toBe("2026-12-06T10:00:00.000Z");
    expect(clock.timestampAt(second)).toBe("2026-12-06T10:00:00.012Z");
  });

  it.each([
    ["year 10000", Date.UTC(10_000, 0, 1), "9999-12-31T23:59:59.999Z"],
    ["a negative year", Date.UTC(-5, 0, 1), "0000-01-01T00:00:00.000Z"],
  ])(
    "keeps a timestamp of a clock faked to %s within the four-digit years the schema allows",
    (_, wall, expected) => {
      const clock = createEventClock(manualClocks(wall).sources);
      expect(clock.timestampAt(clock.now())).toBe(expected);
    },
  );

  it("stamps the real time when a faked wall clock says NaN", () => {
    const clock = createEventClock(manualClocks(Number.NaN).sources);
    expect(Math.abs(Date.parse(clock.timestampAt(clock.now())) - Date.now())).toBeLessThan(60_000);
  });

  it("reads the wall clock once per REANCHOR_MS, not per event", () => {
    const { clocks, sources, advance } = manualClocks(START);
    const clock = createEventClock(sources);
    for (let i = 0; i < 100; i++) {
      clock.timestampAt(clock.now());
      advance(9);
    }
    expect(clocks.wallReads).toBe(1);
    advance(REANCHOR_MS - 900);
    clock.timestampAt(clock.now());
    expect(clocks.wallReads).toBe(2);
  });

  it("keeps a span's timestamps apart by its duration when the wall clock is stepped inside it", () => {
    const { clocks, sources, advance } = manualClocks(START);
    const clock = createEventClock(sources);
    const startedAt = clock.now();
    const start = clock.timestampAt(startedAt);
    advance(40);
    clocks.wall -= 3_600_000; // NTP steps the wall clock back an hour mid-call
    const endedAt = clock.now();
    const end = clock.timestampAt(endedAt);
    expect(Date.parse(end) - Date.parse(start)).toBe(endedAt - startedAt);
  });

  it("follows a step of the wall clock within REANCHOR_MS", () => {
    const { clocks, sources, advance } = manualClocks(START);
    const clock = createEventClock(sources);
    clock.timestampAt(clock.now());
    clocks.wall += 60_000;
    advance(REANCHOR_MS);
    expect(clock.timestampAt(clock.now())).toBe(new Date(clocks.wall).toISOString());
  });

  it("stamps a reading taken before the latest anchor by its distance from it", () => {
    const { sources, advance } = manualClocks(START);
    const clock = createEventClock(sources);
    clock.timestampAt(clock.now());
    advance(REANCHOR_MS - 5);
    const early = clock.now();
    advance(10);
    clock.timestampAt(clock.now()); // re-anchors
    expect(clock.timestampAt(early)).toBe(new Date(START + REANCHOR_MS - 5).toISOString());
  });

  it("keeps event times apart by their monotonic distance across wall-clock checks (Date.now() counts whole ms)", () => {
    // A steady wall clock as Date.now() reads it: rounded down to the millisecond, 0.9 ms off the monotonic one.
    let monotonic = 0;
    const clock = createEventClock({
      wall: () => Math.floor(START + 0.9 + monotonic),
      monotonic: () => monotonic,
    });
    let previous = { at: 0, ms: Date.parse(clock.timestampAt(0)) };
    for (let i = 0; i < 3_000; i++) {
      monotonic += 7.3;
      const ms = Date.parse(clock.timestampAt(monotonic));
      // Each time rounds down once: the difference is its monotonic distance rounded either way, never more.
      expect(Math.abs(ms - previous.ms - (monotonic - previous.at))).toBeLessThan(1);
      previous = { at: monotonic, ms };
    }
  });

  it("takes the wall clock again when the thread was preempted while reading it", () => {
    let monotonic = 0;
    let stalls = 0;
    const clock = createEventClock({
      wall: () => {
        const wall = START + monotonic;
        // The first read after the first second: the thread loses the core for 5 ms right after reading.
        if (monotonic > REANCHOR_MS && stalls++ === 0) monotonic += 5;
        return wall;
      },
      monotonic: () => monotonic,
    });
    const first = Date.parse(clock.timestampAt(0));
    monotonic = REANCHOR_MS + 10;
    const reading = monotonic;
    expect(Date.parse(clock.timestampAt(reading)) - first).toBe(REANCHOR_MS + 10);
    expect(stalls).toBe(2);
  });

  it("agrees with Date.now() on the real clocks", () => {
    const clock = createEventClock();
    const before = Date.now();
    const stamped = Date.parse(clock.timestampAt(clock.now()));
    const after = Date.now();
    // Both clocks count whole milliseconds; the anchor may round down by one.
    expect(stamped).toBeGreaterThanOrEqual(before - 1);
    expect(stamped).toBeLessThanOrEqual(after);
  });
});
