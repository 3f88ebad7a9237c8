/** Polls `condition` every 10 ms until it is true; rejects after `timeoutMs` naming `what`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const met = await readUntil(
    async () => await condition(),
    (value) => value,
    timeoutMs,
  );
  if (!met) throw new Error(`timed out waiting for ${what}`);
}

/**
 * Reads every 10 ms until `done(value)` holds or `timeoutMs` is up, and returns the last value read either way:
 * the assertions that follow then report what the page showed.
 */
export async function readUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
