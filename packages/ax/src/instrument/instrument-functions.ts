import { type TraceOptions, trace } from "@streamll/core";
import { getRuntime } from "@streamll/core/internal";

/** The part of an Ax function (`AxFunction`, `fn(...).build()`) this wraps: its name and handler. */
interface FunctionLike {
  name: string;
  func: (...args: never[]) => unknown;
}

/**
 * Makes each call of the given Ax functions a child span of the program or agent that called it: `start`
 * with the function's name and arguments (when inputs are recorded), `end` with its result and duration, or
 * `error`. For functions given to an `agent(...)`, which Ax calls from its code runtime without a per-call
 * hook; the functions of an `ax(...)` program are recorded by `instrumentAx()` already (through Ax's
 * `onFunctionCall`), so they need no wrapping. Returns new function objects; the given ones are unchanged.
 */
export function instrumentAxFunctions<const F extends readonly FunctionLike[]>(functions: F): F {
  return functions.map((fn) => {
    const original = fn.func;
    const name = fn.name;
    const func = (...args: unknown[]) => {
      const options: TraceOptions = { includeOutputs: true, data: { function: name } };
      if (getRuntime().config.includeInputs) options.data = { function: name, arguments: args[0] };
      return trace(`function:${name}`, () => Reflect.apply(original, fn, args), options);
    };
    return { ...fn, func };
  }) as unknown as F;
}
