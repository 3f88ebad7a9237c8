// The child side of a reader group (see reader-group.mjs): one reader process that logs every handled event id.
//
// A broker's worker file calls `serveReader(open)`. `open(readerOptions, handle)` builds the reader and returns
// `{ run, stop, stats, ready? }`; the reader's handler must `await handle(event.event_id)` so that the id is logged
// before the reader acknowledges it. Ids are written with `writeSync`, one line each, before the handler returns:
// a line in the log means the event was handled, even when the process is SIGKILLed right after.
//
// Protocol with the parent (IPC): `{ type: "ready" }` once the reader's `ready()` (when it has one) resolved,
// `{ type: "progress", handled, firstAt, lastAt }` every 50 ms,
// `{ type: "stopped", handled, stats, handlerMs, firstAt, lastAt }` after `run()` ended, `{ type: "error" }` when
// it rejected. SIGTERM calls `stop()` (a graceful leave); SIGKILL is a crash.
import { closeSync, openSync, writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const PROGRESS_EVERY_MS = 50;

/** Wall-clock time in ms with sub-ms precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

export async function serveReader(open) {
  const config = JSON.parse(process.env.STREAMLL_READER_CONFIG ?? "{}");
  const fd = config.logPath ? openSync(config.logPath, "a") : undefined;
  const delayMs = config.handlerDelayMs ?? 0;
  let handled = 0;
  let handlerMs = 0;
  let firstAt;
  let lastAt;
  const handle = async (eventId) => {
    if (delayMs > 0) {
      const started = performance.now();
      await sleep(delayMs);
      handlerMs += performance.now() - started;
    }
    if (fd !== undefined) writeSync(fd, `${eventId}\n`);
    handled += 1;
    lastAt = now();
    firstAt ??= lastAt;
  };
  const send = (message) => {
    if (process.connected) process.send(message);
  };
  const reader = await open(config.reader, handle);
  // A reader with a ready() (Redis, RabbitMQ) says when it takes its share; the parent may wait for that.
  reader.ready?.().then(
    () => send({ type: "ready" }),
    () => undefined,
  );
  const progress = setInterval(() => send({ type: "progress", handled, firstAt, lastAt }), PROGRESS_EVERY_MS);
  process.on("SIGTERM", () => void reader.stop());
  try {
    await reader.run();
  } catch (error) {
    send({ type: "error", message: error instanceof Error ? error.message : String(error) });
    process.exitCode = 1;
  }
  clearInterval(progress);
  send({ type: "stopped", handled, stats: reader.stats(), handlerMs, firstAt, lastAt });
  if (fd !== undefined) closeSync(fd);
  if (process.connected) process.disconnect();
}
