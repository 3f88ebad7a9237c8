import type { EventRoute } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";
import { editDistance } from "@streamll/core/internal";

/** Stream used by a standalone (or sentinel-less, non-cluster) connection when no `stream` is given. */
export const DEFAULT_STREAM = "streamll_events";

/**
 * Stream used with `Redis.Cluster` when no `stream` is given. The `{streamll}` hash tag pins it, its
 * dead-letter stream and any per-module stream written as `{streamll}:…` to one hash slot, so multi-key
 * commands never fail with `CROSSSLOT`.
 */
export const DEFAULT_CLUSTER_STREAM = "{streamll}:events";

/**
 * A stream key, fixed or per event. A string may contain placeholders that are filled from each event:
 * `{module_name}`, `{event_type}`, `{method_name}`, `{operation}`, `{execution_id}` and `{tags.NAME}`. Any other
 * `{…}` is kept as written, so a Redis Cluster hash tag such as `{streamll}:{module_name}` keeps every module's
 * stream in the slot of `streamll`; but a misspelled placeholder (`{modul_name}`, `{moduleName}`, `{tag.env}`)
 * is a `ConfigurationError` rather than one stream for every event. A function receives the event's routing
 * fields (`EventRoute`: ids, names, type, operation, timestamp, tags; not `data`, which sinks do not parse) and
 * returns the key.
 */
export type StreamKeyTemplate = string | ((event: EventRoute) => string);

const PLACEHOLDER = /\{(module_name|event_type|method_name|operation|execution_id|tags\.[^{}]+)\}/g;
const HAS_PLACEHOLDER = new RegExp(PLACEHOLDER.source);
const IS_PLACEHOLDER = new RegExp(`^${PLACEHOLDER.source}$`);
const MAX_PART_LENGTH = 128;
const FALLBACK_PART = "unknown";

/** Resolves the key for one event. `fixed` is set when the key does not depend on the event. */
export interface StreamKeyResolver {
  readonly fixed: string | undefined;
  keyFor(event: EventRoute): string;
}

function fieldOf(event: EventRoute, name: string): string | null | undefined {
  if (name.startsWith("tags.")) return event.tags[name.slice("tags.".length)];
  switch (name) {
    case "module_name":
      return event.module_name;
    case "event_type":
      return event.event_type;
    case "method_name":
      return event.method_name;
    case "operation":
      return event.operation;
    case "execution_id":
      return event.execution_id;
    default:
      return undefined;
  }
}

// Braces inside a value would create or move a hash tag and whitespace makes keys hard to type in redis-cli.
function cleanPart(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return FALLBACK_PART;
  const cleaned = value.replace(/[{}\s]/g, "_");
  return cleaned.length > MAX_PART_LENGTH ? cleaned.slice(0, MAX_PART_LENGTH) : cleaned;
}

const BRACED = /\{([^{}]*)\}/g;
const PLACEHOLDER_NAMES = ["module_name", "event_type", "method_name", "operation", "execution_id"] as const;

/** Lower case without `_`, `-`, `.` and spaces: `Module-Name`, `moduleName`, `module_name` read `modulename`. */
function normalise(text: string): string {
  return text.toLowerCase().replace(/[_\-.\s]/g, "");
}

/**
 * The placeholder a non-placeholder `{…}` part was meant to be, or `undefined` when it is not clearly a typo.
 *
 * Narrow on purpose: any other `{…}` is a Redis Cluster hash tag, and hash tags are ordinary words (`{events}`,
 * `{orders}`, `{operations}`, `{executions}`). A loose "nearest name" match (core's `nearestName` pairs `events`
 * with `event_type`) would reject valid keys. A part is a typo when, {@link normalise}d:
 * - it equals a placeholder (`{moduleName}`, `{Module-Name}`, `{EVENT_TYPE}`, `{Operation}`);
 * - it is at most 2 edits from a two-word placeholder and written as two words (`{modul_name}`,
 *   `{evnt_type}`, `{exectionId}`), or at most 1 edit as one word (`{modulenme}`). One word 2 edits away is
 *   as often a real word: `{execution}` and `{executions}` are both 2 from `executionid`;
 * - it is 1 edit from `operation` and not longer (`{operaton}`, `{oparation}`); a longer word is another
 *   word (`{operations}`);
 * - it starts with `tag.`, `tag:` or `tags:` in any case, or is `{tags.}` without a name (`{tags.NAME}`).
 */
function misspelledPlaceholder(part: string): string | undefined {
  const tag = /^tags?[.:](.*)$/is.exec(part);
  if (tag) return `tags.${tag[1] === "" ? "NAME" : tag[1]}`;
  const text = normalise(part);
  const twoWords = /[_\-.\s]|[a-z][A-Z]/.test(part);
  for (const name of PLACEHOLDER_NAMES) {
    const known = normalise(name);
    if (name === "operation" && text.length > known.length) continue;
    const limit = name !== "operation" && twoWords ? 2 : 1;
    if (editDistance(text, known, limit + 1) <= limit) return name;
  }
  return undefined;
}

/**
 * Builds a resolver for a stream key template; throws {@link ConfigurationError} for an empty key and for a
 * misspelled placeholder (see {@link StreamKeyTemplate}).
 * @param path the option's path in error messages, e.g. `stream`.
 */
export function compileStreamKey(template: StreamKeyTemplate, path = "stream"): StreamKeyResolver {
  if (typeof template === "function") {
    return {
      fixed: undefined,
      keyFor(event) {
        let key: string;
        try {
          key = template(event);
        } catch {
          key = "";
        }
        // A throwing or empty key function must not lose the event: the module name is always present.
        return typeof key === "string" && key !== "" ? key : `streamll:${cleanPart(event.module_name)}`;
      },
    };
  }
  if (typeof template !== "string" || template === "") {
    const message = "must be a non-empty string or a function";
    throw new ConfigurationError(`RedisSink ${path} ${message}`, [{ path, message }]);
  }
  const issues: { path: string; message: string }[] = [];
  for (const [part, inner = ""] of template.matchAll(BRACED)) {
    if (IS_PLACEHOLDER.test(part)) continue;
    const meant = misspelledPlaceholder(inner);
    if (meant !== undefined)
      issues.push({ path, message: `"${part}" is not a placeholder; did you mean "{${meant}}"?` });
  }
  if (issues.length > 0) {
    const detail = issues.map((issue) => issue.message).join("; ");
    throw new ConfigurationError(
      `RedisSink ${path}: ${detail} (other {…} text is kept as written, as a Redis Cluster hash tag)`,
      issues,
    );
  }
  if (!HAS_PLACEHOLDER.test(template)) return { fixed: template, keyFor: () => template };
  return {
    fixed: undefined,
    keyFor: (event) =>
      template.replace(PLACEHOLDER, (_match, name: string) => cleanPart(fieldOf(event, name))),
  };
}

// CRC16/XMODEM as specified by the Redis Cluster spec (polynomial 0x1021, init 0).
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0);
  return crc;
}

/**
 * The part of a key that Redis Cluster hashes: the text between the first `{` and the next `}` when it is not
 * empty, otherwise the whole key.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** The Redis Cluster hash slot (0–16383) of a key. */
export function clusterKeySlot(key: string): number {
  return crc16(Buffer.from(hashTagOf(key), "utf8")) % 16384;
}
