import { type TraceOptions, trace } from "@streamll/core";
import { getRuntime, reportInternalError, v, validateOptions } from "@streamll/core/internal";
import { currentAxCall } from "./ax-call";

/**
 * The part of an Ax function (`AxFunction`, `fn(...).build()`) this wraps: its name and handler. `execution`
 * is listed so an inline `execution: "background"` keeps its literal type, which Ax's `AxFunction` requires.
 */
interface FunctionLike {
  name: string;
  func: (...args: never[]) => unknown;
  execution?: "blocking" | "background";
}

/**
 * The keys of Ax's `AxFunction` (plus `examples`, which `fn(...).build()` adds), as `instrumentAxFunctions()`
 * checks them. Only `name` and `func` are needed here; the rest are Ax's to check, listed so a misspelled key
 * (`fucn`) is caught when the functions are wrapped rather than when the model first calls one.
 */
interface AxFunctionEntry {
  name: string;
  func: (...args: never[]) => unknown;
  description?: string;
  execution?: "blocking" | "background";
  componentId?: string;
  namespace?: string;
  parameters?: object;
  returns?: object;
  protocol?: object;
  examples?: readonly object[];
}

const axFunctionEntrySchema = v.object<AxFunctionEntry>({
  name: v.string({ min: 1 }),
  func: v.fn<(...args: never[]) => unknown>(),
  description: v.string().optional(),
  execution: v.oneOf(["blocking", "background"]).optional(),
  componentId: v.string().optional(),
  namespace: v.string().optional(),
  parameters: v.passthrough<object>("AxFunctionJSONSchema, passed to Ax unchecked").optional(),
  returns: v.passthrough<object>("AxFunctionJSONSchema, passed to Ax unchecked").optional(),
  protocol: v.passthrough<object>("Ax function protocol, passed to Ax unchecked").optional(),
  examples: v.array(v.passthrough<object>("Ax function example, passed to Ax unchecked")).optional(),
});

const functionsSchema = v.array(axFunctionEntrySchema);

/**
 * Makes each call of the given Ax functions a child span of the program or agent that called it: `start`
 * with the function's name and arguments (when inputs are recorded), `end` with its result and duration, or
 * `error`. For functions given to an `agent(...)`, which Ax calls from its code runtime without a per-call
 * hook; the functions of an `ax(...)` program are recorded by `instrumentAx()` already (through Ax's
 * `onFunctionCall`), so they need no wrapping; wrapped ones still get one span per call (the wrapper's, which
 * has the real start and end). Returns a new array of new function objects, typed as the given entries, that
 * any Ax `functions` option takes as is (no `[...]` copy needed); the given ones are unchanged.
 *
 * @throws ConfigurationError when `functions` is not an array of Ax functions: an entry without a `name` or
 * `func`, or with a key `AxFunction` does not have (`[0].fucn`), named with the key it most likely meant.
 */
export function instrumentAxFunctions<F extends readonly FunctionLike[] | []>(functions: F): [...F] {
  // The result type is a mutable array (a tuple for a literal list) of the given entries' own types: ax(),
  // AxGen and forward options take a mutable `AxInputFunctionType`. No `const` type parameter: it would make a
  // literal's nested arrays (`required: ["city"]`) readonly, which `AxFunctionJSONSchema` rejects; `| []` keeps
  // a literal list a tuple instead.
  // Checked up front: the wrapper below always has a `func`, so Ax could no longer notice a missing one and
  // the mistake would surface only when the model calls the function.
  validateOptions("instrumentAxFunctions()", functionsSchema, functions);
  return functions.map((fn) => {
    const original = fn.func;
    const name = fn.name;
    const func = (...args: unknown[]) => {
      try {
        // Ax also reports this call to the instrumented program's `onFunctionCall`: this span is the call's one.
        currentAxCall()?.noteWrappedFunctionRun(name);
      } catch (error) {
        reportInternalError("recording a function call failed", error);
      }
      const options: TraceOptions = { includeOutputs: true, data: { function: name } };
      if (getRuntime().config.includeInputs) options.data = { function: name, arguments: args[0] };
      return trace(`function:${name}`, () => Reflect.apply(original, fn, args), options);
    };
    return { ...fn, func };
  }) as unknown as [...F];
}
