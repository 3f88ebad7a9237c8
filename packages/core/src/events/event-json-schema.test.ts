import { describe, expect, it } from "vitest";
import { createEventJsonSchema, EVENT_JSON_SCHEMA_ID } from "./event-json-schema";
import { streamllEventSchema } from "./event-schema";

type Schema = Record<string, unknown>;

/**
 * A small JSON Schema 2020-12 validator for exactly the keywords the generated schema uses. It throws on any
 * other keyword, so the test fails loudly (rather than passing vacuously) if the generated schema changes shape.
 */
function validate(schema: Schema, value: unknown, root: Schema, path = ""): string[] {
  const errors: string[] = [];
  const fail = (message: string) => errors.push(`${path || "(root)"}: ${message}`);
  for (const keyword of Object.keys(schema)) {
    const known = [
      "$schema",
      "$id",
      "$defs",
      "$ref",
      "title",
      "description",
      "type",
      "properties",
      "required",
      "additionalProperties",
      "propertyNames",
      "pattern",
      "minLength",
      "maxLength",
      "anyOf",
      "items",
    ];
    if (!known.includes(keyword)) throw new Error(`validator does not support keyword ${keyword}`);
  }
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace(/^#\/\$defs\//, "");
    const target = (root.$defs as Record<string, Schema>)[name];
    if (target === undefined) throw new Error(`unresolved $ref ${schema.$ref}`);
    errors.push(...validate(target, value, root, path));
  }
  if (Array.isArray(schema.anyOf)) {
    const ok = (schema.anyOf as Schema[]).some((s) => validate(s, value, root, path).length === 0);
    if (!ok) fail("matches none of anyOf");
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const actual =
      value === null
        ? "null"
        : Array.isArray(value)
          ? "array"
          : typeof value === "number"
            ? "number"
            : typeof value;
    const matches = types.some((t) => t === actual || (t === "integer" && Number.isInteger(value)));
    if (!matches) {
      fail(`expected ${types.join("|")}, got ${actual}`);
      return errors;
    }
  }
  if (typeof value === "string") {
    const length = [...value].length;
    if (typeof schema.minLength === "number" && length < schema.minLength) fail("too short");
    if (typeof schema.maxLength === "number" && length > schema.maxLength) fail("too long");
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) fail("pattern");
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((item, i) => {
      errors.push(...validate(schema.items as Schema, item, root, `${path}[${i}]`));
    });
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in obj)) fail(`missing ${key}`);
    for (const [key, child] of Object.entries(obj)) {
      const childPath = path ? `${path}.${key}` : key;
      if (schema.propertyNames !== undefined)
        errors.push(...validate(schema.propertyNames as Schema, key, root, childPath));
      const propertySchema = properties[key];
      if (propertySchema !== undefined) errors.push(...validate(propertySchema, child, root, childPath));
      else if (schema.additionalProperties === false) fail(`unexpected ${key}`);
      else if (typeof schema.additionalProperties === "object") {
        errors.push(...validate(schema.additionalProperties as Schema, child, root, childPath));
      }
    }
  }
  return errors;
}

const WIRE_EXAMPLE = JSON.parse(
  '{"schema_version":"1.0","event_id":"V1StGXR8_Z5j","execution_id":"kq3x9Zt0aB1c","span_id":"Jx81bQ0aLm2p",' +
    '"parent_span_id":null,"timestamp":"2026-11-27T10:15:30.123Z","module_name":"RAGPipeline",' +
    '"method_name":"forward","event_type":"start","operation":"retrieval","data":{},"tags":{"env":"prod"},' +
    '"module_version":null,"code_signature":null,"git_commit":null}',
) as Record<string, unknown>;

describe("createEventJsonSchema", () => {
  const schema = createEventJsonSchema();

  it("is a draft 2020-12 schema with an $id, a title and a description", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.$id).toBe(EVENT_JSON_SCHEMA_ID);
    expect(schema.title).toBe("streamll event");
    expect(typeof schema.description).toBe("string");
  });

  it("lists every schema field as required, each with a description", () => {
    const fields = Object.keys(streamllEventSchema.shape);
    expect(fields).toHaveLength(15);
    expect(schema.required).toEqual(fields);
    const properties = schema.properties as Record<string, Schema>;
    expect(Object.keys(properties)).toEqual(fields);
    for (const field of fields) expect(properties[field]?.description, field).toMatch(/\S/);
  });

  it("keeps unknown fields allowed, so minor versions can add them", () => {
    expect(schema.additionalProperties).not.toBe(false);
  });

  it("validates the wire example, and an event with nested data and extra fields", () => {
    expect(validate(schema, WIRE_EXAMPLE, schema)).toEqual([]);
    const rich = {
      ...WIRE_EXAMPLE,
      parent_span_id: "Jx81bQ0aLm2q",
      data: { question: "q", k: 3, nested: { list: [1, "two", null, { deep: true }] } },
      new_field: 1,
    };
    expect(validate(schema, rich, schema)).toEqual([]);
  });

  it("rejects what the zod schema rejects", () => {
    const bad = [
      { ...WIRE_EXAMPLE, timestamp: "2026-11-27 10:15:30" },
      { ...WIRE_EXAMPLE, event_id: "bad id!" },
      { ...WIRE_EXAMPLE, tags: { env: 1 } },
      { ...WIRE_EXAMPLE, module_name: "" },
      { ...WIRE_EXAMPLE, data: [] },
      { ...WIRE_EXAMPLE, method_name: undefined },
    ];
    for (const event of bad) {
      expect(streamllEventSchema.safeParse(event).success).toBe(false);
      expect(validate(schema, JSON.parse(JSON.stringify(event)), schema)).not.toEqual([]);
    }
  });
});
