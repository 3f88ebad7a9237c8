import type { EventRoute } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";

/** The default routing key template: `streamll.<module_name>.<event_type>`. */
export const DEFAULT_ROUTING_KEY_TEMPLATE = "streamll.{module_name}.{event_type}";

/** Event fields a routing key template may use, besides `{tags.NAME}`. */
export const ROUTING_KEY_FIELDS = [
  "module_name",
  "method_name",
  "event_type",
  "operation",
  "execution_id",
  "span_id",
  "schema_version",
] as const;

/** A field name usable as a routing key placeholder. */
export type RoutingKeyField = (typeof ROUTING_KEY_FIELDS)[number];

/** AMQP short strings, routing keys included, are at most 255 bytes. */
const MAX_ROUTING_KEY_BYTES = 255;
/** Stands in for a null field or a missing tag. */
const MISSING = "none";

/**
 * Makes a value safe as ONE routing-key word: `.` separates words and `*`/`#` are binding wildcards, so a
 * module called `a.b` or `*` must not change which bindings match. Whitespace goes too, for readability in
 * bindings and logs.
 */
export function sanitizeRoutingKeyPart(value: string): string {
  const cleaned = value.replace(/[.*#\s]/g, "_");
  return cleaned === "" ? "_" : cleaned;
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8");
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

type Part = string | ((event: EventRoute) => string);

function fieldReader(field: RoutingKeyField): (event: EventRoute) => string {
  return (event) => {
    const value = event[field];
    return sanitizeRoutingKeyPart(typeof value === "string" ? value : MISSING);
  };
}

function tagReader(tag: string): (event: EventRoute) => string {
  return (event) => sanitizeRoutingKeyPart(event.tags[tag] ?? MISSING);
}

/**
 * Compiles a template such as `streamll.{module_name}.{event_type}` into a function. Placeholders are the
 * fields in `ROUTING_KEY_FIELDS` and `{tags.NAME}`; a null field or missing tag becomes `none`; every value is
 * sanitised with `sanitizeRoutingKeyPart`. Keys longer than 255 bytes are made to fit by cutting the placeholders'
 * values, so the template's own words stay (`streamll.<long module>.error` still ends in `.error`). An unknown placeholder
 * throws `ConfigurationError` at construction, not at the first event.
 */
export function compileRoutingKey(
  template: string,
  optionPath = "routingKey",
): (event: EventRoute) => string {
  if (typeof template !== "string" || template.length === 0) {
    throw new ConfigurationError(`${optionPath} must be a non-empty string`, [
      { path: optionPath, message: "must be a non-empty string" },
    ]);
  }
  const parts: Part[] = [];
  const pattern = /\{([^{}]*)\}/g;
  let last = 0;
  for (const match of template.matchAll(pattern)) {
    const index = match.index ?? 0;
    if (index > last) parts.push(template.slice(last, index));
    const name = (match[1] ?? "").trim();
    if ((ROUTING_KEY_FIELDS as readonly string[]).includes(name)) {
      parts.push(fieldReader(name as RoutingKeyField));
    } else if (name.startsWith("tags.") && name.length > 5) {
      parts.push(tagReader(name.slice(5)));
    } else {
      throw new ConfigurationError(
        `${optionPath}: unknown placeholder {${name}} (use ${ROUTING_KEY_FIELDS.map((f) => `{${f}}`).join(", ")} or {tags.NAME})`,
        [{ path: optionPath, message: `unknown placeholder {${name}}` }],
      );
    }
    last = index + match[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  if (/[{}]/.test(parts.filter((p): p is string => typeof p === "string").join(""))) {
    throw new ConfigurationError(`${optionPath}: unbalanced braces in "${template}"`, [
      { path: optionPath, message: "unbalanced braces" },
    ]);
  }
  if (parts.every((p) => typeof p === "string")) {
    const fixed = truncateUtf8(template, MAX_ROUTING_KEY_BYTES);
    return () => fixed;
  }
  const literalBytes = parts.reduce(
    (sum, part) => sum + (typeof part === "string" ? Buffer.byteLength(part, "utf8") : 0),
    0,
  );
  return (event) => {
    let key = "";
    for (const part of parts) key += typeof part === "string" ? part : part(event);
    if (key.length * 3 <= MAX_ROUTING_KEY_BYTES || Buffer.byteLength(key, "utf8") <= MAX_ROUTING_KEY_BYTES)
      return key;
    return fitted(parts, event, literalBytes);
  };
}

/**
 * A key over 255 bytes with its placeholders' values cut, not its end: cutting the key itself dropped the
 * template's tail (`.error` after a long module name), so `streamll.*.error` stopped matching. The values
 * share what the template's own text leaves; a short one keeps all of it, the long ones split the rest.
 */
function fitted(parts: readonly Part[], event: EventRoute, literalBytes: number): string {
  const values = parts.map((part) => (typeof part === "string" ? undefined : part(event)));
  const placeholders = values.filter((value) => value !== undefined).length;
  let budget = MAX_ROUTING_KEY_BYTES - literalBytes;
  if (budget < placeholders) {
    return truncateUtf8(
      parts.map((part, i) => (typeof part === "string" ? part : values[i])).join(""),
      MAX_ROUTING_KEY_BYTES,
    );
  }
  const byLength = values
    .map((value, index) => ({ index, bytes: value === undefined ? -1 : Buffer.byteLength(value, "utf8") }))
    .filter((entry) => entry.bytes >= 0)
    .sort((a, b) => a.bytes - b.bytes);
  const kept: (string | undefined)[] = [...values];
  byLength.forEach((entry, position) => {
    const share = Math.floor(budget / (byLength.length - position));
    const value = truncateUtf8(values[entry.index] as string, Math.max(1, share));
    kept[entry.index] = value;
    budget -= Buffer.byteLength(value, "utf8");
  });
  return parts.map((part, i) => (typeof part === "string" ? part : kept[i])).join("");
}
