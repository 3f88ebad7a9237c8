/** The longest delay a Node timer takes; the timer only has to exist, it never fires in practice. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** True while the delivery pipeline is inside a sink's `send()` call (see {@link sendingForPipeline}). */
let pipelineSending = false;

/**
 * @internal Calls `send` (the pipeline calling a sink's `send()`) so that the sink's {@link ProcessHold} does
 * not hold the process for it. The pipeline's sends are waited for by `flush()`, `shutdown()` and the exit
 * flush, which hold the process with their own deadlines; a hold here would keep a program that has ended from
 * reaching `beforeExit` (and so its bounded exit flush) until a send to a silent broker timed out.
 */
export function sendingForPipeline<T>(send: () => T): T {
  const outer = pipelineSending;
  pipelineSending = true;
  try {
    return send();
  } finally {
    pipelineSending = outer;
  }
}

/**
 * Keeps the host process alive while work someone awaits is in flight, and only then.
 *
 * A sink's connection must not keep a finished program alive (core flushes pending events on `beforeExit`), so
 * sinks unref their sockets and timers. But an unref'd socket alone cannot carry a reply someone is waiting
 * for: `await sink.connect()` as a script's only work would end the process mid-handshake (Node's "unsettled
 * top-level await"). A sink therefore runs its `connect()`, `send()` and `close()` inside {@link run}: one
 * ref'd timer exists while at least one of them is in flight, none when the sink is idle. Sends the delivery
 * pipeline makes are not held (see {@link sendingForPipeline}).
 */
export class ProcessHold {
  #active = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * Runs `work` with the process held until it settles; called by the pipeline (see
   * {@link sendingForPipeline}), it only runs `work`. Must be called synchronously from the sink's method.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (pipelineSending) return work();
    this.#acquire();
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  /** True while some work is in flight (for tests). */
  get holding(): boolean {
    return this.#active > 0;
  }

  #acquire(): void {
    this.#active += 1;
    this.#timer ??= setInterval(keepAlive, MAX_TIMER_DELAY_MS);
  }

  #release(): void {
    this.#active -= 1;
    if (this.#active > 0 || this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function keepAlive(): void {
  // Nothing to do: the timer's existence is what holds the process.
}
