import { createRequire } from "node:module";

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  /** The request timeout watchdog, set once the connection is up; not initialised before. */
  requestTimeoutIntervalId?: ReturnType<typeof setInterval> | undefined;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
  scheduleRequestTimeoutCheck(): void;
}

let patched = false;

/**
 * Two fixes to kafkajs's request queue; kafkajs is pinned to 2.2.4, whose request queue this matches.
 *
 * The cause of the `TimeoutNegativeWarning` kafkajs makes Node print: after every response it schedules a check of its pending requests at `throttledUntil - Date.now()`, which
 * is about -1.8e12 ms when nothing is throttled (`throttledUntil` starts at -1), even with nothing pending.
 * Node warns and runs that timer after 1 ms; it then re-arms itself, so every idle connection also spins a
 * 1 ms timer until it closes. The replacement schedules a check only when requests are waiting, at the end of
 * the throttle (never a negative delay), as kafkajs intended. The user's own warnings are untouched.
 *
 * The request timeout watchdog, unref'd: every connected connection runs a 100 ms `setInterval` that times
 * out overdue requests and clears itself once the connection is gone. Ref'd, it kept a program whose sink was
 * left connected (no `shutdown()`) alive forever. It only watches an open connection, so the connection's
 * socket decides whether the process lives: a reader's (ref'd) socket holds the process and the watchdog
 * keeps running while it does; a sink's (unref'd) socket does not, and pending sends are held by core's
 * exit flush deadline instead.
 */
export function patchKafkaJsRequestQueue(): void {
  if (patched) return;
  patched = true;
  // Both builds resolve from this file (tsup's shims give the CommonJS build an `import.meta.url`).
  const load = createRequire(import.meta.url);
  const RequestQueue = load("kafkajs/src/network/requestQueue/index.js") as { prototype: RequestQueueLike };
  const CHECK_PENDING_REQUESTS_INTERVAL = 10;
  RequestQueue.prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(
    this: RequestQueueLike,
  ): void {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const throttledFor = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL,
    );
  };
  const scheduleRequestTimeoutCheck = RequestQueue.prototype.scheduleRequestTimeoutCheck;
  RequestQueue.prototype.scheduleRequestTimeoutCheck = function unrefRequestTimeoutCheck(
    this: RequestQueueLike,
  ): void {
    scheduleRequestTimeoutCheck.call(this);
    // Unset when kafkajs enforces no request timeouts (the sink and the reader always enable them).
    this.requestTimeoutIntervalId?.unref();
  };
}
