/**
 * Settles like `promise`, or rejects with `reason()` as soon as `signal` aborts, whichever comes first.
 *
 * Sinks wrap broker calls in it so the pipeline's send timeout (`SendContext.signal`) really ends the wait
 * even when the client library has no cancellation of its own. The abandoned promise keeps running; its
 * eventual rejection is observed so it never surfaces as an unhandled rejection.
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  reason: () => unknown,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(reason());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => undefined);
      reject(reason());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
