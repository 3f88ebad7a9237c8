import { z } from "zod";
import { SCHEMA_VERSION, streamllEventSchema } from "./event-schema";

/** `$id` of the published JSON Schema: one id per schema major version (a URN: no URL is claimed). */
export const EVENT_JSON_SCHEMA_ID = "urn:streamll:schema:event:1";

/**
 * The streamll event as a JSON Schema (draft 2020-12), generated from `streamllEventSchema`: the same file
 * ships as `@streamll/core/event.schema.json` for consumers in other languages.
 */
export function createEventJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(streamllEventSchema, { target: "draft-2020-12", io: "output" }) as Record<
    string,
    unknown
  >;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: EVENT_JSON_SCHEMA_ID,
    title: "streamll event",
    description:
      `One streamll event (schema_version ${SCHEMA_VERSION}). Consumers should accept any 1.x schema_version ` +
      "and keep fields they do not know: minor versions only add optional fields.",
    ...rest,
  };
}
