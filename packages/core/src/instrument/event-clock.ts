import { performance } from "node:perf_hooks";

/**
 * How long the wall clock is extrapolated from one reading of it. The monotonic clock can drift from the wall
 * clock (NTP slews it by at most 0.5 ms per second), and the wall clock can be stepped; re-reading it once a
 * second keeps event times within about a millisecond of `Date.now()` and follows a step within a second.
 */
export const REANCHOR_MS = 1_000;

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
 * and a monotonic reading taken together, renewed every {@link REANCHOR_MS} of monotonic time), and the
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
      } else {
        if (reading - anchorMonotonic >= REANCHOR_MS) {
          anchorMonotonic = monotonic();
          anchorWall = wall();
        }
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
