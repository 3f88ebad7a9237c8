import { AsyncResource } from "node:async_hooks";

/**
 * Why this exists: an Ax agent runs the code its model writes in a code runtime (`AxCodeRuntime`; by default
 * `AxJSRuntime`, which runs it in a pooled Node worker). When that code calls one of the agent's functions,
 * the runtime calls the host function from its worker's message handler, which runs in the async context the
 * worker was set up in — for a pooled worker, whichever agent call used it first. A function wrapped by
 * `instrumentAxFunctions` would then open its span under that stale (often already ended) call, in the wrong
 * execution. The host functions reach the runtime only through the public `AxCodeRuntime.createSession(globals)`
 * and `AxCodeSession.patchGlobals(globals)`, each called by the agent run that owns those functions, so binding
 * every function in those globals to the caller's async context there makes each call run in the context of
 * the agent run that really made it, whatever worker carries it.
 */

/** A runtime or session method, or a host function in a session's globals. */
type Method = (...args: unknown[]) => unknown;

const boundRuntimes = new WeakSet<object>();
const boundSessions = new WeakSet<object>();

/**
 * Makes the host functions an Ax code runtime is given run in the async context of the call that gave them:
 * wraps the runtime's `createSession` and the `patchGlobals` of every session it creates, in place, so that
 * the functions in their `globals` are bound to the caller's context. Otherwise the runtime behaves as before
 * (same arguments, same results, same session objects). Does nothing for a value that is not a runtime, one
 * already hooked, or one whose methods cannot be replaced (a frozen object).
 */
export function bindRuntimeContext(runtime: unknown): void {
  if (!isObject(runtime) || boundRuntimes.has(runtime)) return;
  const createSession = (runtime as { createSession?: unknown }).createSession;
  if (typeof createSession !== "function") return;
  const hooked = function createSessionInCallerContext(this: unknown, ...args: unknown[]): unknown {
    const session = Reflect.apply(createSession, this, withBoundGlobals(args));
    hookSession(session);
    return session;
  };
  if (replaceMethod(runtime, "createSession", hooked)) boundRuntimes.add(runtime);
}

/** A session's `patchGlobals` brings new host functions too (Ax's executor stage hands its own over this way). */
function hookSession(session: unknown): void {
  if (!isObject(session) || boundSessions.has(session)) return;
  const patchGlobals = (session as { patchGlobals?: unknown }).patchGlobals;
  if (typeof patchGlobals !== "function") return;
  const hooked = function patchGlobalsInCallerContext(this: unknown, ...args: unknown[]): unknown {
    return Reflect.apply(patchGlobals, this, withBoundGlobals(args));
  };
  if (replaceMethod(session, "patchGlobals", hooked)) boundSessions.add(session);
}

/** The arguments with their first one, the globals, bound to the async context current now. */
function withBoundGlobals(args: unknown[]): unknown[] {
  if (args.length === 0 || !isObject(args[0])) return args;
  // One resource per call: it holds the caller's context (AsyncLocalStorage stores included).
  const resource = new AsyncResource("streamll.ax.runtime-globals");
  return [bindFunctions(args[0], resource, new Map()), ...args.slice(1)];
}

/**
 * `value` with every function in it (directly, or nested in arrays and plain objects, where runtimes look
 * for them) replaced by one that runs in `resource`'s context. Containers without functions are returned
 * as they are, not copied, so a runtime sees the same objects it would have seen unhooked.
 */
function bindFunctions(value: unknown, resource: AsyncResource, seen: Map<object, unknown>): unknown {
  if (!isObject(value)) return value;
  const done = seen.get(value);
  if (done !== undefined) return done;
  if (typeof value === "function") {
    const fn = value as Method;
    const bound = function runInCallerContext(this: unknown, ...args: unknown[]): unknown {
      return resource.runInAsyncScope(fn, this, ...args);
    };
    seen.set(value, bound);
    return bound;
  }
  // A cycle back to a container still being walked keeps the original.
  seen.set(value, value);
  let result: unknown = value;
  if (Array.isArray(value)) {
    const items = value.map((item) => bindFunctions(item, resource, seen));
    if (items.some((item, index) => item !== value[index])) result = items;
  } else if (isPlainObject(value)) {
    const entries = Object.entries(value).map(
      ([key, item]) => [key, bindFunctions(item, resource, seen)] as const,
    );
    const source = value as Record<string, unknown>;
    if (entries.some(([key, item]) => item !== source[key])) {
      const copy = Object.assign(Object.create(Object.getPrototypeOf(value)) as object, value);
      for (const [key, item] of entries) (copy as Record<string, unknown>)[key] = item;
      result = copy;
    }
  }
  seen.set(value, result);
  return result;
}

/**
 * Replaces `target[key]` with an own property, as enumerable as the one it replaces (so a copy made with
 * `{ ...session }` still has it); false when the object does not allow it (frozen, sealed).
 */
function replaceMethod(target: object, key: string, method: Method): boolean {
  const enumerable = Object.getOwnPropertyDescriptor(target, key)?.enumerable ?? false;
  try {
    return Reflect.defineProperty(target, key, {
      value: method,
      writable: true,
      enumerable,
      configurable: true,
    });
  } catch {
    return false;
  }
}

function isObject(value: unknown): value is object {
  return (typeof value === "object" && value !== null) || typeof value === "function";
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
