import { z } from "zod";

/**
 * The wire format version. Minor bumps only add optional fields (old consumers keep working); a major bump
 * may remove or change fields. Consumers should accept any `1.x`.
 */
export const SCHEMA_VERSION = "1.0";

/**
 * `method_name` of events whose span is not a method call: a plain function, a `trace()` block outside any
 * module, `emit()` outside any span. It is the default of Python streamll's model too: the module's one entry
 * point, as DSPy's `forward`.
 */
export const DEFAULT_METHOD_NAME = "forward";

/** Event types emitted by instrumentation itself. Any other non-empty name is a custom event. */
export const BUILTIN_EVENT_TYPES = ["start", "end", "error", "token", "version"] as const;
export type BuiltinEventType = (typeof BUILTIN_EVENT_TYPES)[number];

const idSchema = z
  .string()
  .min(8)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "must be a URL-safe id");

/**
 * An ISO-8601 UTC timestamp with every field in range: month 01-12, day 01-31, hour 00-23, minute and second
 * 00-59. A leap second (`:60`) is refused: `Date` and Python's `datetime` cannot read it, and streamll never
 * writes one. Any four-digit year passes, as streamll clamps the years it writes to 0000-9999. The JSON Schema
 * carries this pattern; zod also refuses days past the end of their month (`02-30`), which a pattern cannot say
 * for leap years.
 */
const ISO_UTC_TIMESTAMP =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z$/;

/** Days in `month` (1-12) of `year` in the proleptic Gregorian calendar, as `Date` and ISO-8601 count them. */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * False only for a timestamp {@link ISO_UTC_TIMESTAMP} accepts whose day is past the end of its month: zod runs
 * this check after a failed pattern too, and the pattern's own issue already reports that case.
 */
function isCalendarDate(timestamp: string): boolean {
  if (!ISO_UTC_TIMESTAMP.test(timestamp)) return true;
  const year = Number(timestamp.slice(0, 4));
  const month = Number(timestamp.slice(5, 7));
  const day = Number(timestamp.slice(8, 10));
  return day <= daysInMonth(year, month);
}

const isoUtcTimestamp = z
  .string()
  .regex(ISO_UTC_TIMESTAMP, "must be an ISO-8601 UTC timestamp ending in Z")
  .refine(isCalendarDate, "must be a date that exists (no February 30)");

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

const jsonValueSchema: z.ZodType<JsonValue> = z
  .lazy(() =>
    z.union([
      z.string(),
      z.number(),
      z.boolean(),
      z.null(),
      z.array(jsonValueSchema),
      z.record(z.string(), jsonValueSchema),
    ]),
  )
  .meta({ id: "JsonValue", description: "Any JSON value: string, number, boolean, null, array or object." });

/**
 * The streamll event: one schema for every sink. Field names are snake_case and match the Python streamll
 * event so consumers written against either library read both.
 */
export const streamllEventSchema = z
  .object({
    schema_version: z
      .string()
      .regex(/^\d+\.\d+$/, "must look like 1.0")
      .describe(
        "Wire format version, MAJOR.MINOR. Consumers accept any 1.x; minor versions only add fields.",
      ),
    event_id: idSchema.describe("Unique id of this event (URL-safe, 8-64 characters)."),
    execution_id: idSchema.describe("Id shared by every event of one top-level call and everything it ran."),
    span_id: idSchema.describe("Id of the module call or trace() block that emitted the event."),
    parent_span_id: idSchema
      .nullable()
      .describe("span_id of the enclosing call or block; null for the outermost one."),
    timestamp: isoUtcTimestamp.describe("When the event was created: ISO-8601 in UTC, ending in Z."),
    module_name: z.string().min(1).max(512).describe("Instrumented module or class name, e.g. RAGPipeline."),
    method_name: z
      .string()
      .max(512)
      .describe(
        "Instrumented method, e.g. forward; forward when the span is not a method call (a plain function, a " +
          "trace() block outside any module, emit() outside any span). Never null.",
      ),
    event_type: z
      .string()
      .min(1)
      .max(128)
      .describe("start, end, error, token, version, or a custom name passed to emit()."),
    operation: z
      .string()
      .max(512)
      .nullable()
      .describe(
        "Name of the trace() block, or the operation option of instrument(); null when none was given.",
      ),
    data: z
      .record(z.string(), jsonValueSchema)
      .describe("Event payload (JSON object). Values JSON cannot carry are replaced by documented markers."),
    tags: z
      .record(z.string(), z.string())
      .describe("String key/value labels from configure() and instrument()."),
    module_version: z
      .string()
      .max(512)
      .nullable()
      .describe("Version label of the module, when known; otherwise null."),
    code_signature: z
      .string()
      .max(128)
      .nullable()
      .describe("Hash of the instrumented code, telling module versions apart; null when not computed."),
    git_commit: z
      .string()
      .max(128)
      .nullable()
      .describe("Git commit of the running code, when known; otherwise null."),
  })
  // Minor versions may add fields; old consumers must not reject them.
  .loose();

export type StreamllEvent = z.infer<typeof streamllEventSchema>;
