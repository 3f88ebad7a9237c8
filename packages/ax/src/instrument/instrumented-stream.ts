import { reportInternalError } from "@streamll/core/internal";
import { type AxCall, runInCall } from "./ax-call";

type Step = IteratorResult<unknown, unknown>;

/**
 * The stream `streamingForward` returns, observed: each `next()`/`return()`/`throw()` runs inside the call's
 * span (model requests and nested programs started while streaming get the right parent), each chunk becomes
 * token events, and the call ends when the stream does — or as cancelled when the consumer stops early.
 */
export class InstrumentedAxStream implements AsyncGenerator<unknown, unknown, unknown> {
  readonly #inner: AsyncGenerator<unknown, unknown, unknown>;
  readonly #call: AxCall;
  #done = false;

  constructor(inner: AsyncGenerator<unknown, unknown, unknown>, call: AxCall) {
    this.#inner = inner;
    this.#call = call;
  }

  next(...args: [] | [unknown]): Promise<Step> {
    return this.#step(this.#inner.next, args, false);
  }

  return(value?: unknown): Promise<Step> {
    return this.#step(this.#inner.return, [value], true);
  }

  throw(error?: unknown): Promise<Step> {
    return this.#step(this.#inner.throw, [error], false);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return(undefined);
  }

  #step(method: Function, args: unknown[], cancelling: boolean): Promise<Step> {
    if (this.#done) return Reflect.apply(method, this.#inner, args) as Promise<Step>;
    const call = this.#call;
    const pending = runInCall(call, method as (...a: never[]) => Promise<Step>, this.#inner, args);
    return pending.then(
      (result: Step) => {
        try {
          if (result.done === true) {
            this.#done = true;
            call.finishStream(cancelling);
          } else {
            call.onDelta(result.value);
          }
        } catch (error) {
          reportInternalError("recording a streamed chunk failed", error);
        }
        return result;
      },
      (error: unknown) => {
        if (!this.#done) {
          this.#done = true;
          call.fail(error);
        }
        throw error;
      },
    );
  }
}
