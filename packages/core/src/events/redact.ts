import type { JsonObject, JsonValue, StreamllEvent } from "./event-schema";

/** What replaces the value of a redacted key. */
export const REDACTED = "[REDACTED]";

/**
 * A function that sees every event before it is encoded and returns it (changed or not), or `null` to drop it.
 * It runs on the caller's thread for every event, so keep it cheap. Mutating the event it receives is allowed.
 */
export type RedactFunction = (event: StreamllEvent) => StreamllEvent | null;

/**
 * How events are redacted before they leave the process:
 * - a list of keys: every property of `data` (at any depth, inside arrays too) whose name equals one of the
 *   keys, compared case-insensitively, has its value replaced with `"[REDACTED]"`;
 * - a {@link RedactFunction}.
 */
export type Redactor = readonly string[] | RedactFunction;

/** The lowered key set of every key redactor, so the runtime can redact `data` without building an event. */
const keyRedactorKeys = new WeakMap<Function, ReadonlySet<string>>();

/** Keys are compared exactly but case-insensitively: `password` matches `Password`, not `db_password`. */
export function createKeyRedactor(keys: readonly string[]): (event: StreamllEvent) => StreamllEvent {
  const lowered = new Set(keys.map((key) => key.toLowerCase()));
  const redactor = (event: StreamllEvent): StreamllEvent => {
    if (lowered.size === 0) return event;
    const data = redactObject(event.data, lowered);
    return data === event.data ? event : { ...event, data };
  };
  keyRedactorKeys.set(redactor, lowered);
  return redactor;
}

/**
 * @internal The keys of a redactor made by {@link createKeyRedactor}, or `undefined` for any other function.
 * Such a redactor only ever changes `data`, which is what lets the runtime skip the event object.
 */
export function keyRedactorKeysOf(redactor: unknown): ReadonlySet<string> | undefined {
  return typeof redactor === "function" ? keyRedactorKeys.get(redactor) : undefined;
}

/** @internal What a key redactor does to `data`: the same object when no key matched, else a redacted copy. */
export function redactDataKeys(data: JsonObject, keys: ReadonlySet<string>): JsonObject {
  return keys.size === 0 ? data : redactObject(data, keys);
}

/**
 * Returns `value` itself when nothing inside it matched, so events without sensitive keys are not copied.
 * Input is sanitised JSON (depth already capped), so plain recursion is safe.
 */
function redactValue(value: JsonValue, keys: ReadonlySet<string>): JsonValue {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let copy: JsonValue[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as JsonValue;
      const redacted = redactValue(item, keys);
      if (redacted !== item) {
        copy ??= value.slice();
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  return redactObject(value, keys);
}

function redactObject(value: JsonObject, keys: ReadonlySet<string>): JsonObject {
  let copy: JsonObject | undefined;
  for (const key of Object.keys(value)) {
    const item = value[key] as JsonValue;
    const redacted = keys.has(key.toLowerCase()) ? REDACTED : redactValue(item, keys);
    if (redacted !== item) {
      copy ??= { ...value };
      // defineProperty, not assignment: a key named `__proto__` must stay a plain property.
      Object.defineProperty(copy, key, {
        value: redacted,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return copy ?? value;
}
