import type { EventRoute } from "@streamll/core";
import { ConfigurationError } from "@streamll/core";

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
 * stream in the slot of `streamll`. A function receives the event's routing fields (`EventRoute`: ids, names,
 * type, operation, timestamp, tags; not `data`, which sinks do not parse) and returns the key.
 */
export type StreamKeyTemplate = string | ((event: EventRoute) => string);

const PLACEHOLDER = /\{(module_name|event_type|method_name|operation|execution_id|tags\.[^{}]+)\}/g;
const HAS_PLACEHOLDER = new RegExp(PLACEHOLDER.source);
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

/** Builds a resolver for a stream key template; throws {@link ConfigurationError} for an empty key. */
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
