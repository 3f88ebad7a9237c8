import { z } from "zod";

/**
 * The wire format version. Minor bumps only add optional fields (old consumers keep working); a major bump
 * may remove or change fields. Consumers should accept any `1.x`.
 */
export const SCHEMA_VERSION = "1.0";

/** Event types emitted by instrumentation itself. Any other non-empty name is a custom event. */
export const BUILTIN_EVENT_TYPES = ["start", "end", "error", "token", "version"] as const;
export type BuiltinEventType = (typeof BUILTIN_EVENT_TYPES)[number];

const idSchema = z
  .string()
  .min(8)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "must be a URL-safe id");

const isoUtcTimestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, "must be an ISO-8601 UTC timestamp ending in Z");

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

const jsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValueSchema), z.record(z.string(), jsonValueSchema)]),
);

/**
 * The streamll event: one schema for every sink. Field names are snake_case and match the Python streamll
 * event so consumers written against either library read both.
 */
export const streamllEventSchema = z
  .object({
    schema_version: z.string().regex(/^\d+\.\d+$/, "must look like 1.0"),
    event_id: idSchema,
    execution_id: idSchema,
    span_id: idSchema,
    parent_span_id: idSchema.nullable(),
    timestamp: isoUtcTimestamp,
    module_name: z.string().min(1).max(512),
    method_name: z.string().max(512).nullable(),
    event_type: z.string().min(1).max(128),
    operation: z.string().max(512).nullable(),
    data: z.record(z.string(), jsonValueSchema),
    tags: z.record(z.string(), z.string()),
    module_version: z.string().max(512).nullable(),
    code_signature: z.string().max(128).nullable(),
    git_commit: z.string().max(128).nullable(),
  })
  // Minor versions may add fields; old consumers must not reject them.
  .loose();

export type StreamllEvent = z.infer<typeof streamllEventSchema>;
