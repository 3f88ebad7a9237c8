// Shared by the packages' tests: whether a promise settles, without a test hanging on one that does not.

/**
 * "settled" once `promise` settles (resolved or rejected); "hung" if it has not after `ms`, a bound far above
 * the time it should take.
 */
export function settles(promise, ms = 10_000) {
  let timer;
  return Promise.race([
    promise.then(
      () => "settled",
      () => "settled",
    ),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve("hung"), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
