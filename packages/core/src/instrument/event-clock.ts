import { performance } from "node:perf_hooks";

/**
 * How long the wall clock is extrapolated before it is read again. The monotonic clock can drift from the wall
 * clock (NTP slews it by at most 0.5 ms per second), and the wall clock can be stepped; checking it once a
 * second follows a step within a second.
 */
export const REANCHOR_MS = 1_000;

/**
 * How far the wall clock may disagree with the extrapolation before the anchor moves. `Date.now()` counts whole
 * milliseconds, so two readings of one steady clock disagree by up to 1 ms: moving the anchor for that would
 * shift event times back and forth by up to a millisecond, and a call's `end` minus `start` with them.
 */
const STEP_TOLERANCE_MS = 1.5;

/**
 * A wall-clock reading is taken between two monotonic ones. When they are further apart than this (the thread
 * was preempted between them), it is taken again, up to {@link ANCHOR_TRIES} times, and the tightest is kept.
 */
const MAX_READ_SPAN_MS = 0.25;
const ANCHOR_TRIES = 3;

/** The two clocks an {@link EventClock} reads; the defaults are `Date.now` and `performance.now`. */
export type ClockSources = {
  /** Wall-clock milliseconds since the epoch. */
  readonly wall: () => number;
  /** Monotonic milliseconds, never stepped. */
  readonly monotonic: () => number;
};

/**
 * @internal Event times from one clock read per event.
 *
 * Every event is stamped from one monotonic reading, converted to wall-clock time through an anchor (a wall
 * and a monotonic reading taken together; the wall clock is checked against it every {@link REANCHOR_MS} of
 * monotonic time and the anchor moved when they disagree by more than the wall clock's rounding), and the
 * reading that ends a call's timing also stamps its `end` event. So an instrumented call reads a clock three
 * times instead of four, and the `end` event's timestamp minus the `start` event's is the call's `duration_ms`
 * (plus the microseconds its start event took to build) even when the wall clock is stepped in between.
 */
export type EventClock = {
  /** A monotonic reading (ms) to time a span with and to pass to {@link EventClock.timestampAt}. */
  now(): number;
  /** ISO-8601 wall-clock time of a reading of {@link EventClock.now}. */
  timestampAt(reading: number): string;
};

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the times an ISO-8601 timestamp of the schema can say. */
const FIRST_MS = -62_167_219_200_000;
const LAST_MS = 253_402_300_799_999;

const realDate = Date;
const realDateNow = Date.now;
const realPerformanceNow = performance.now;

/**
 * True while a test has replaced a clock (fake timers such as `vi.useFakeTimers()` replace `Date` and may patch
 * `performance.now`; `vi.spyOn(Date, "now")` replaces `Date.now`): events then carry the wall time `Date.now()`
 * gives, read per event, as a test that sets the system time expects.
 */
function clockReplaced(): boolean {
  return (
    globalThis.Date !== realDate || realDate.now !== realDateNow || performance.now !== realPerformanceNow
  );
}

export function createEventClock(sources?: ClockSources): EventClock {
  const wall = sources?.wall ?? realDateNow;
  const monotonic = sources?.monotonic ?? (() => performance.now());
  const followFakes = sources === undefined;
  let anchorWall = 0;
  let anchorMonotonic = Number.NEGATIVE_INFINITY;
  /** When the wall clock was last compared with the extrapolation (monotonic ms). */
  let checkedAt = Number.NEGATIVE_INFINITY;
  /** Reads the wall clock; moves the anchor only when it disagrees by more than the clock's own rounding. */
  const check = (): void => {
    let span = Number.POSITIVE_INFINITY;
    let wallAt = 0;
    let monotonicAt = 0;
    for (let i = 0; i < ANCHOR_TRIES && span > MAX_READ_SPAN_MS; i++) {
      const before = monotonic();
      const w = wall();
      const after = monotonic();
      if (after - before < span) {
        span = after - before;
        wallAt = w;
        monotonicAt = (before + after) / 2;
      }
    }
    checkedAt = monotonicAt;
    const extrapolated = anchorWall + (monotonicAt - anchorMonotonic);
    if (!(Math.abs(wallAt - extrapolated) <= STEP_TOLERANCE_MS)) {
      anchorWall = wallAt;
      anchorMonotonic = monotonicAt;
    }
  };
  // Formatted once per millisecond: the events of one call usually share one, and formatting is one of the
  // larger costs of an event.
  let formattedMs = Number.NaN;
  let formatted = "";
  return {
    now: monotonic,
    timestampAt(reading) {
      let ms: number;
      if (followFakes && clockReplaced()) {
        ms = globalThis.Date.now();
        // Anchor afresh once the real clock is back.
        anchorMonotonic = Number.NEGATIVE_INFINITY;
        checkedAt = Number.NEGATIVE_INFINITY;
      } else {
        if (reading - checkedAt >= REANCHOR_MS) check();
        ms = Math.floor(anchorWall + (reading - anchorMonotonic));
      }
      // A faked clock may say anything: the schema's timestamps have four-digit years, and NaN has none.
      if (!(ms >= FIRST_MS && ms <= LAST_MS))
        ms = Number.isNaN(ms) ? realDateNow() : Math.min(LAST_MS, Math.max(FIRST_MS, ms));
      if (ms !== formattedMs) {
        formatted = new realDate(ms).toISOString();
        formattedMs = ms;
      }
      return formatted;
    },
  };
}
