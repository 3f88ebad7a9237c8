import { createRequire } from "node:module";

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

let patched = false;

/**
 * Fixes kafkajs 2.2.4's request queue at the cause of the `TimeoutNegativeWarning` it makes Node print:
 * after every response it schedules a check of its pending requests at `throttledUntil - Date.now()`, which
 * is about -1.8e12 ms when nothing is throttled (`throttledUntil` starts at -1), even with nothing pending.
 * Node warns and runs that timer after 1 ms; it then re-arms itself, so every idle connection also spins a
 * 1 ms timer until it closes. The replacement schedules a check only when requests are waiting, at the end of
 * the throttle (never a negative delay), as kafkajs intended. kafkajs is pinned to 2.2.4, whose request queue
 * this matches; the user's own warnings are untouched.
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
}
